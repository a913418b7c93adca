"""A learner's lab as Kubernetes objects: the workshop model mapped onto a cluster.

Docker here, Kubernetes there (docs/workshops-kubernetes.md):
  the lab's network      -> a Namespace, with a NetworkPolicy that lets its pods reach only
                            each other (and the cluster DNS); an `online` step adds one more
  a host                 -> a Pod running the same keep-alive as PID 1, plus a headless
                            Service of the host's name, so `web1` resolves as on Docker
  memory and pids limits -> resources.limits.memory, a ResourceQuota for the namespace
                            (pids are limited per node, by the kubelet's podPidsLimit)
  capabilities           -> drop ALL, add the lab's; the namespace's Pod Security level is
                            `baseline` unless a host needs more (then `privileged`)
  labels                 -> on the namespace: deleting it removes everything of the lab

Plain data, validated against the Kubernetes API schemas in the tests; opslabs does not
talk to a cluster (nothing here can run one to test it).
"""

from __future__ import annotations

import re

from opslabs.catalog import TaskEntry
from opslabs.engine import DEFAULT_CAPS, KEEPALIVE
from opslabs.errors import UserError
from opslabs.model import Host

# The capabilities Pod Security `baseline` lets a container add (Kubernetes' Pod Security Standards).
BASELINE_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                           "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
LABEL = "io.opslabs"
_QUANTITY = {"k": "Ki", "m": "Mi", "g": "Gi"}  # Docker's k/m/g are binary units


def quantity(size: str) -> str:
    """`768m` (Docker) -> `768Mi` (Kubernetes)."""
    return size[:-1] + _QUANTITY[size[-1].lower()]


def _dns_label(text: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].rstrip("-")
    if not label:
        raise UserError(f"{text!r} gives no usable Kubernetes name")
    return label


def namespace_name(lab_id: str, run_id: str) -> str:
    """`opslabs-LAB-RUN`, at most 63 characters (a DNS label); the run id is always kept whole."""
    return _dns_label(f"opslabs-{lab_id}"[: 63 - len(run_id) - 1]) + "-" + _dns_label(run_id)


def pod_security_level(hosts: dict[str, Host]) -> str:
    needs_more = any(host.privileged or set(map(str.upper, host.cap_add)) - BASELINE_CAPS for host in hosts.values())
    return "privileged" if needs_more else "baseline"


def lab_manifests(entry: TaskEntry, run_id: str, images: dict[str, str], owner: str = "", online: bool = False) -> list[dict]:
    """Every object of one learner's lab, in the order to create them. `images` maps each
    host to the image its pod runs (its setup layer, pushed where the cluster pulls from)."""
    lab = entry.task.lab
    missing = [name for name in lab.hosts if name not in images]
    if missing:
        raise UserError(f"lab {entry.id}: no image given for host(s) {', '.join(missing)}")
    ns = namespace_name(entry.id, run_id)
    labels = {f"{LABEL}/kind": "workshop", f"{LABEL}/lab": _dns_label(entry.id), f"{LABEL}/run": _dns_label(run_id)}
    if owner:
        labels[f"{LABEL}/owner"] = _dns_label(owner)
    level = pod_security_level(lab.hosts)
    objects: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": {**labels, "pod-security.kubernetes.io/enforce": level}}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "lab", "namespace": ns},
         "spec": {"hard": {"pods": str(len(lab.hosts)),
                           "limits.memory": quantity(f"{sum(_mib(h.memory) for h in lab.hosts.values())}m")}}},
        isolation_policy(ns),
    ]
    if online:
        objects.append(online_policy(ns))
    for name, host in lab.hosts.items():
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": _dns_label(name), "namespace": ns},
                        "spec": {"clusterIP": "None", "selector": {f"{LABEL}/host": _dns_label(name)}}})
        objects.append(host_pod(ns, name, host, images[name], labels))
    return objects


def _mib(size: str) -> int:
    return max(1, int(size[:-1]) * {"k": 1, "m": 1024, "g": 1024 * 1024}[size[-1].lower()] // 1024)


def isolation_policy(ns: str) -> dict:
    """The lab's network: its pods reach each other and the cluster DNS, nothing else, and nothing else reaches them."""
    def same_namespace() -> list[dict]:
        return [{"podSelector": {}}]  # a fresh list each time: YAML output without anchors

    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "lab-network", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": same_namespace()}], "egress": [{"to": same_namespace()}, dns]}}


def online_policy(ns: str) -> dict:
    """A step that teaches installing: egress to the internet, not to the cluster's private ranges."""
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "lab-online", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": private}}]}]}}


def host_pod(ns: str, name: str, host: Host, image: str, labels: dict[str, str]) -> dict:
    caps = list(dict.fromkeys((*DEFAULT_CAPS, *(c.upper() for c in host.cap_add))))
    security = {"privileged": True} if host.privileged else {
        "privileged": False, "capabilities": {"drop": ["ALL"], "add": caps}}
    container = {
        "name": "host", "image": image, "command": ["sh", "-c", KEEPALIVE],
        "env": [{"name": key, "value": value} for key, value in host.env.items()],
        "resources": {"limits": {"memory": quantity(host.memory)}, "requests": {"memory": "32Mi"}},
        "securityContext": security,
    }
    volumes = []
    for i, (mount, size) in enumerate(host.tmpfs.items()):
        volumes.append({"name": f"tmpfs-{i}", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(size)}})
        container.setdefault("volumeMounts", []).append({"name": f"tmpfs-{i}", "mountPath": mount})
    spec = {"hostname": _dns_label(name), "automountServiceAccountToken": False, "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 0, "containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": _dns_label(name), "namespace": ns, "labels": {**labels, f"{LABEL}/host": _dns_label(name)}},
            "spec": spec}
