//! Protobuf on the wire with the real kubectl: its typed commands send and read
//! `application/vnd.kubernetes.protobuf`, watches included.

use crate::harness::TestCluster;

#[tokio::test]
async fn protobuf_probe() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl(&["create", "namespace", "dev", "-v=10"]);
    std::fs::write("/tmp/pb-probe.log", &out.stderr).expect("write");
    panic!("probe");
}
