#!/usr/bin/env python3
"""Writes src/apiserver/protobuf/table.rs: the protobuf field table of every message reachable
from the kinds rkube serves.

Field numbers and proto types come from the `k8s-pb` crate (its prost attributes); JSON field
names from `k8s-openapi` (its serde impls name each field). Both are read from the cargo
registry's unpacked sources; when one is missing, a scratch crate that depends on both is
fetched with `cargo fetch` first. Usage:

    python3 scripts/gen-protobuf-table.py            # writes the table
    python3 scripts/gen-protobuf-table.py --check    # fails if the committed table differs
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

PB_VERSION = "k8s-pb-0.9.0"
OPENAPI_VERSION = "k8s-openapi-0.29.0"
# The newest Kubernetes version k8s-openapi knows: JSON names never change, and k8s-pb may be
# newer than the version rkube builds against.
OPENAPI_KUBE = "v1_37"
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "apiserver", "protobuf", "table.rs")

# The top-level kinds rkube reads or writes in protobuf: (apiVersion, kind, message). Meta
# kinds (apiVersion "") are accepted under any apiVersion, as upstream registers them in
# every group version.
KINDS = [
    ("v1", "Pod", "core.v1.Pod"),
    ("v1", "PodList", "core.v1.PodList"),
    ("v1", "Node", "core.v1.Node"),
    ("v1", "NodeList", "core.v1.NodeList"),
    ("v1", "Namespace", "core.v1.Namespace"),
    ("v1", "NamespaceList", "core.v1.NamespaceList"),
    ("v1", "Event", "core.v1.Event"),
    ("v1", "EventList", "core.v1.EventList"),
    ("v1", "PodTemplate", "core.v1.PodTemplate"),
    ("v1", "PodTemplateList", "core.v1.PodTemplateList"),
    ("v1", "Binding", "core.v1.Binding"),
    ("v1", "ConfigMap", "core.v1.ConfigMap"),
    ("v1", "ConfigMapList", "core.v1.ConfigMapList"),
    ("v1", "Secret", "core.v1.Secret"),
    ("v1", "SecretList", "core.v1.SecretList"),
    ("v1", "ServiceAccount", "core.v1.ServiceAccount"),
    ("v1", "ServiceAccountList", "core.v1.ServiceAccountList"),
    ("authentication.k8s.io/v1", "TokenRequest", "authentication.v1.TokenRequest"),
    ("coordination.k8s.io/v1", "Lease", "coordination.v1.Lease"),
    ("coordination.k8s.io/v1", "LeaseList", "coordination.v1.LeaseList"),
    ("policy/v1", "Eviction", "policy.v1.Eviction"),
    ("apps/v1", "Deployment", "apps.v1.Deployment"),
    ("apps/v1", "DeploymentList", "apps.v1.DeploymentList"),
    ("apps/v1", "ReplicaSet", "apps.v1.ReplicaSet"),
    ("apps/v1", "ReplicaSetList", "apps.v1.ReplicaSetList"),
    ("batch/v1", "Job", "batch.v1.Job"),
    ("batch/v1", "JobList", "batch.v1.JobList"),
    ("batch/v1", "CronJob", "batch.v1.CronJob"),
    ("batch/v1", "CronJobList", "batch.v1.CronJobList"),
    ("autoscaling/v1", "Scale", "autoscaling.v1.Scale"),
    ("rbac.authorization.k8s.io/v1", "Role", "rbac.v1.Role"),
    ("rbac.authorization.k8s.io/v1", "RoleList", "rbac.v1.RoleList"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "rbac.v1.ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleList", "rbac.v1.ClusterRoleList"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rbac.v1.RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "RoleBindingList", "rbac.v1.RoleBindingList"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "rbac.v1.ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBindingList", "rbac.v1.ClusterRoleBindingList"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "authorization.v1.SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", "authorization.v1.SelfSubjectRulesReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "authentication.v1.SelfSubjectReview"),
    ("", "Status", "meta.v1.Status"),
    ("", "DeleteOptions", "meta.v1.DeleteOptions"),
    ("", "WatchEvent", "meta.v1.WatchEvent"),
]

# Messages that stand for a JSON scalar (or embedded JSON), transcoded by hand. `Duration` is
# reached by no kind rkube serves yet and the transcoder has no `Kind::Duration`: a table that
# names it does not compile until the transcoder learns it.
SPECIAL = {
    "meta.v1.Time": "Time",
    "meta.v1.MicroTime": "MicroTime",
    "meta.v1.Duration": "Duration",
    "meta.v1.FieldsV1": "FieldsV1",
    "resource.Quantity": "Quantity",
    "intstr.IntOrString": "IntOrString",
    "runtime.RawExtension": "RawExtension",
}

SCALARS = {
    "string": "Str",
    "bool": "Bool",
    "int32": "I32",
    "int64": "I64",
    "double": "F64",
    "bytes": "Bytes",
}


def cargo_home():
    return os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))


def fetch_sources():
    """Brings both crates into the cargo registry through a scratch crate."""
    with tempfile.TemporaryDirectory() as scratch:
        pb, openapi = PB_VERSION.rsplit("-", 1)[1], OPENAPI_VERSION.rsplit("-", 1)[1]
        with open(os.path.join(scratch, "Cargo.toml"), "w", encoding="utf-8") as manifest:
            manifest.write(
                '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n'
                f'[dependencies]\nk8s-pb = "={pb}"\n'
                f'k8s-openapi = {{ version = "={openapi}", features = ["{OPENAPI_KUBE}"] }}\n'
            )
        os.makedirs(os.path.join(scratch, "src"))
        open(os.path.join(scratch, "src", "lib.rs"), "w", encoding="utf-8").close()
        subprocess.run(["cargo", "fetch", "--manifest-path", os.path.join(scratch, "Cargo.toml")], check=True)


def registry_dir(name):
    pattern = os.path.join(cargo_home(), "registry", "src", "*", name)
    if not glob.glob(pattern):
        fetch_sources()
    found = sorted(glob.glob(pattern))
    if not found:
        sys.exit(f"{name} is not in the cargo registry after `cargo fetch`")
    return found[-1]


def short_name(module):
    """`apimachinery/pkg/apis/meta/v1` -> `meta.v1`, `api/core/v1` -> `core.v1`."""
    for prefix in (
        "api/",
        "apimachinery/pkg/apis/",
        "apimachinery/pkg/api/",
        "apimachinery/pkg/util/",
        "apimachinery/pkg/",
    ):
        if module.startswith(prefix):
            return module[len(prefix):].replace("/", ".")
    return module.replace("/", ".")


def resolve(module, path):
    """The module of a rust type path as written in `module` (`super::super::x::Y`)."""
    parts = path.split("::")
    name = parts[-1]
    here = module.split("/")
    rest = parts[:-1]
    while rest and rest[0] == "super":
        here = here[:-1]
        rest = rest[1:]
    return "/".join(here + rest), name


STRUCT = re.compile(r"pub struct (\w+) \{(.*?)\n\}", re.S)
FIELD = re.compile(r"#\[prost\(([^]]*)\)\]\s*pub (?:r#)?(\w+):")
TYPE_PATH = re.compile(r"((?:super::)*(?:\w+::)*[A-Z]\w*)")


def field_type(body, start):
    """The rust type starting at `start`, up to the comma that ends the field."""
    depth = 0
    for at in range(start, len(body)):
        ch = body[at]
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            return " ".join(body[start:at].split())
    raise ValueError("a field without its closing comma")


def message_type(ty):
    """The message named by a field's rust type (inside Option/Vec/Box/BTreeMap)."""
    for wrapper in (
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
    ):
        ty = ty.replace(wrapper, "")
    ty = re.sub(r"::prost::alloc::collections::BTreeMap<\s*::prost::alloc::string::String,\s*", "", ty)
    ty = ty.replace(">", "").strip()
    match = TYPE_PATH.search(ty)
    if not match:
        raise ValueError(f"no message type in {ty!r}")
    return match.group(1)


def read_pb(root):
    messages = {}
    for path in glob.glob(os.path.join(root, "src", "**", "mod.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), os.path.join(root, "src"))
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"^\s*///.*\n", "", text, flags=re.M)
        for struct in STRUCT.finditer(text):
            name, body = struct.group(1), struct.group(2) + "\n"
            fields = []
            for field in FIELD.finditer(body):
                attr, rust = field.group(1), field.group(2)
                ty = field_type(body, field.end())
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                kind = attr.split(",")[0].strip()
                entry = {"tag": tag, "rust": rust, "repeated": "repeated" in attr}
                if kind.startswith("btree_map") or kind.startswith("map"):
                    value = re.search(r'map = "string, (\w+)"', attr).group(1)
                    entry["map"] = True
                    if value == "message":
                        entry["type"] = ("message",) + resolve(module, message_type(ty))
                    else:
                        entry["type"] = (value,)
                elif kind == "message":
                    entry["type"] = ("message",) + resolve(module, message_type(ty))
                elif kind.startswith("bytes"):
                    entry["type"] = ("bytes",)
                else:
                    entry["type"] = (kind,)
                fields.append(entry)
            messages[(module, name)] = fields
    return messages


JSON_PAIR = re.compile(r'"([^"]+)" => Field::Key_(\w+),')


def read_openapi(root):
    """(module, lower-cased struct name) -> {rust field name: JSON name}."""
    names = {}
    base = os.path.join(root, "src", OPENAPI_KUBE)
    for path in glob.glob(os.path.join(base, "**", "*.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), base)
        text = open(path, encoding="utf-8").read()
        struct = re.search(r"pub struct (\w+)", text)
        if not struct:
            continue
        pairs = {norm(rust): json for json, rust in JSON_PAIR.findall(text)}
        if pairs:
            names[(module, struct.group(1).lower())] = pairs
    return names


def norm(rust):
    """Rust field names compared as prost and k8s-openapi spell them (`pod_cid_rs`, `pod_cidrs`)."""
    return rust.replace("_", "").lower()


def camel(rust):
    head, *tail = rust.split("_")
    return head + "".join(t[:1].upper() + t[1:] for t in tail)


def main():
    pb = read_pb(registry_dir(PB_VERSION))
    openapi = read_openapi(registry_dir(OPENAPI_VERSION))
    by_short = {f"{short_name(m)}.{n}": (m, n) for (m, n) in pb}

    wanted = [message for _, _, message in KINDS]
    seen = set()
    order = []
    guessed = []
    while wanted:
        short = wanted.pop()
        if short in seen or short in SPECIAL:
            continue
        seen.add(short)
        order.append(short)
        for field in pb[by_short[short]]:
            if field["type"][0] == "message":
                _, fmod, fname = field["type"]
                wanted.append(f"{short_name(fmod)}.{fname}")

    def names_of(short):
        module, name = by_short[short]
        return openapi.get((module, name.lower()), {})

    # An embedded struct has no JSON names of its own: it takes its parent's.
    borrowed = {}
    for short in order:
        parent = names_of(short)
        for field in pb[by_short[short]]:
            ty = field["type"]
            if ty[0] != "message" or field["repeated"] or norm(field["rust"]) in parent:
                continue
            nested = f"{short_name(ty[1])}.{ty[2]}"
            fields = pb[(ty[1], ty[2])]
            if parent and fields and all(norm(f["rust"].rstrip("_")) in parent for f in fields):
                borrowed[nested] = parent

    lines = []
    for short in sorted(order):
        module, name = by_short[short]
        json_names = names_of(short) or borrowed.get(short, {})
        lines.append(f'    msg("{short}", &[')
        for field in sorted(pb[(module, name)], key=lambda f: f["tag"]):
            rust = field["rust"].rstrip("_")
            json = json_names.get(norm(rust))
            ty = field["type"]
            inline = None
            if json is None and json_names and ty[0] == "message" and not field["repeated"]:
                # Go's embedded structs (`json:",inline"`): their fields stand in the parent's JSON.
                nested = pb[(ty[1], ty[2])]
                if nested and all(norm(f["rust"].rstrip("_")) in json_names for f in nested):
                    inline = f"{short_name(ty[1])}.{ty[2]}"
            if inline:
                lines.append(f'        one({field["tag"]}, "", Inline("{inline}")),')
                continue
            if json is None:
                json = camel(rust)
                guessed.append(f"{short}.{json}")
            if ty[0] == "message":
                target = f"{short_name(ty[1])}.{ty[2]}"
                kind = SPECIAL.get(target, f'Msg("{target}")')
            else:
                kind = SCALARS[ty[0]]
            if field.get("map"):
                kind = f"Map(&{kind})"
            maker = "rep" if field["repeated"] else "one"
            lines.append(f'        {maker}({field["tag"]}, "{json}", {kind}),')
        lines.append("    ]),")

    kinds = [f'    ("{v}", "{k}", "{m}"),' for v, k, m in KINDS]
    text = "\n".join(
        [
            "//! Generated by scripts/gen-protobuf-table.py from k8s-pb (field numbers and types) and",
            "//! k8s-openapi (JSON names); do not edit.",
            "",
            "use super::schema::{msg, one, rep, Kind::*, Message};",
            "",
            "/// The top-level kinds: (apiVersion, kind, message); an empty apiVersion matches any.",
            "pub static KINDS: &[(&str, &str, &str)] = &[",
            *kinds,
            "];",
            "",
            "/// Every message reachable from [`KINDS`], sorted by name.",
            "pub static MESSAGES: &[Message] = &[",
            *lines,
            "];",
            "",
        ]
    )
    if "--check" in sys.argv:
        if open(OUT, encoding="utf-8").read() != text:
            sys.exit(f"{OUT} is out of date; run scripts/gen-protobuf-table.py")
        return
    with open(OUT, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"{len(order)} messages; JSON names guessed (no k8s-openapi field): {', '.join(guessed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
