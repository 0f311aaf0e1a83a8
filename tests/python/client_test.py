"""Drives rkube's API with the Python kubernetes client: create, list, watch, patch, delete."""
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main():
    config.load_kube_config()
    v1 = client.CoreV1Api()

    names = sorted(ns.metadata.name for ns in v1.list_namespace().items)
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"], names

    # A body without apiVersion and kind takes the endpoint's, as kube-apiserver decodes it.
    made = v1.create_namespace({"metadata": {"name": "py-ns"}})
    assert (made.kind, made.api_version, made.status.phase) == ("Namespace", "v1", "Active")
    bare = {"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert v1.create_namespaced_pod("py-ns", bare).kind == "Pod"
    try:
        v1.create_namespaced_pod("py-ns", dict(bare, kind="Node"))
        raise AssertionError("a Node body on the pods endpoint must fail")
    except ApiException as e:
        assert e.status == 400, e.status

    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "py", "labels": {"app": "py"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    created = v1.create_namespaced_pod("default", body)
    assert created.spec.restart_policy == "Always"
    assert created.status.phase == "Pending"

    try:
        v1.create_namespaced_pod("default", body)
        raise AssertionError("a second create must fail")
    except ApiException as e:
        assert e.status == 409, e.status

    listed = v1.list_namespaced_pod("default", label_selector="app=py")
    assert [p.metadata.name for p in listed.items] == ["py"]

    v1.patch_namespaced_pod("py", "default", {"metadata": {"labels": {"tier": "web"}}})
    w = watch.Watch()
    seen = []
    for event in w.stream(
        v1.list_namespaced_pod,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].metadata.labels.get("tier")))
        w.stop()
    assert seen == [("MODIFIED", "web")], seen

    v1.delete_namespaced_pod("py", "default")
    try:
        v1.read_namespaced_pod("py", "default")
        raise AssertionError("the pod must be gone")
    except ApiException as e:
        assert e.status == 404, e.status
    print("python client: ok")


if __name__ == "__main__":
    sys.exit(main())
