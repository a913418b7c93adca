"""A lab mapped onto Kubernetes objects: valid against the Kubernetes API schemas, and isolated as on Docker."""

from pathlib import Path

import kubernetes_validate
import pytest

from opslabs.engine import KEEPALIVE
from opslabs.errors import UserError
from opslabs.load import load_catalog
from opslabs.policy import DEFAULT_POLICY
from opslabs.web import kubernetes

REPO = Path(__file__).resolve().parents[2]
K8S = "1.33.0"  # a release the schemas of kubernetes-validate cover


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "labs", DEFAULT_POLICY)


def manifests(entry, **kwargs):
    return kubernetes.lab_manifests(entry, "a1b2c3d4", {h: f"registry.example.org/opslabs-setup:{h}" for h in entry.task.lab.hosts}, **kwargs)


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("lab", ["nginx-load-balancer", "nftables-host-firewall", "gitflow-release"])
def test_every_object_is_valid_for_the_kubernetes_api(catalog, lab):
    for obj in manifests(catalog.find_lab(lab), owner="web-1f2e-ada", online=True):
        kubernetes_validate.validate(obj, K8S, strict=True)  # raises on any unknown field or wrong type


def test_the_nginx_lab_is_a_namespace_with_a_pod_and_a_named_service_per_host(catalog):
    objects = manifests(catalog.find_lab("nginx-load-balancer"), owner="web-1f2e-ada")
    [ns] = by_kind(objects, "Namespace")
    assert ns["metadata"]["name"] == "opslabs-nginx-load-balancer-a1b2c3d4"
    assert ns["metadata"]["labels"]["io.opslabs/owner"] == "web-1f2e-ada"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert objects[0] is ns  # created first: everything else lives in it
    pods = {p["metadata"]["name"]: p for p in by_kind(objects, "Pod")}
    assert sorted(pods) == ["lb", "web1", "web2"]
    services = {s["metadata"]["name"]: s["spec"] for s in by_kind(objects, "Service")}
    assert services["web1"] == {"clusterIP": "None", "selector": {"io.opslabs/host": "web1"}}  # `web1` resolves to its pod
    lb = pods["lb"]["spec"]
    assert lb["hostname"] == "lb" and lb["automountServiceAccountToken"] is False
    [container] = lb["containers"]
    assert container["command"] == ["sh", "-c", KEEPALIVE]  # PID 1 idles as on Docker
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "NET_ADMIN" not in container["securityContext"]["capabilities"]["add"]
    [quota] = by_kind(objects, "ResourceQuota")
    assert quota["spec"]["hard"] == {"pods": "3", "limits.memory": "2304Mi"}


def test_the_lab_network_lets_pods_reach_only_each_other_and_dns_unless_online(catalog):
    entry = catalog.find_lab("nginx-load-balancer")
    [policy] = by_kind(manifests(entry), "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["podSelector"] == {}
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]  # only pods of this namespace
    assert spec["egress"][0] == {"to": [{"podSelector": {}}]}
    assert {p["port"] for p in spec["egress"][1]["ports"]} == {53}
    online = by_kind(manifests(entry, online=True), "NetworkPolicy")
    assert [p["metadata"]["name"] for p in online] == ["lab-network", "lab-online"]
    assert "10.0.0.0/8" in online[1]["spec"]["egress"][0]["to"][0]["ipBlock"]["except"]  # not the cluster's ranges


def test_a_lab_that_adds_net_admin_needs_the_privileged_pod_security_level(catalog):
    objects = manifests(catalog.find_lab("nftables-host-firewall"))
    assert by_kind(objects, "Namespace")[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    adds = {c for p in by_kind(objects, "Pod") for c in p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]}
    assert "NET_ADMIN" in adds


def test_names_stay_dns_labels_and_sizes_become_quantities():
    assert kubernetes.namespace_name("a" * 80, "deadbeef").endswith("-deadbeef")
    assert len(kubernetes.namespace_name("a" * 80, "deadbeef")) <= 63
    assert [kubernetes.quantity(s) for s in ("768m", "2g", "512k")] == ["768Mi", "2Gi", "512Ki"]


def test_a_host_without_an_image_is_refused(catalog):
    with pytest.raises(UserError, match="no image given for host"):
        kubernetes.lab_manifests(catalog.find_lab("nginx-load-balancer"), "a1b2", {"lb": "x"})
