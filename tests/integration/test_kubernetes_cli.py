"""`opslabs workshop manifests`: one learner's lab as Kubernetes objects, images named from this machine's setup cache."""

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

from opslabs import images
from opslabs.load import load_catalog
from opslabs.policy import DEFAULT_POLICY

REPO = Path(__file__).resolve().parents[2]


def test_manifests_name_the_pushed_setup_images_and_validate(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(REPO / "labs"), "workshop", "manifests",
                           "nginx-load-balancer", "--registry", "registry.example.org/opslabs", "--run-id", "ada01"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
    entry = load_catalog(REPO / "labs", DEFAULT_POLICY).find_lab("nginx-load-balancer")
    wanted = {name: f"registry.example.org/opslabs/{images.CACHE_REPOSITORY}:{images.setup_key(host)}"
              for name, host in entry.task.lab.hosts.items()}
    pods = {o["metadata"]["name"]: o["spec"]["containers"][0]["image"] for o in objects if o["kind"] == "Pod"}
    assert pods == wanted
    pushes = [line for line in proc.stdout.splitlines() if line.startswith("# ")]
    assert len(pushes) == len(set(wanted.values()))  # web1 and web2 share one setup layer: one push
    assert all(f"docker push {image}" in "\n".join(pushes) for image in wanted.values())


def test_an_unknown_lab_is_one_sentence():
    proc = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(REPO / "labs"), "workshop", "manifests", "no-such-lab",
                           "--registry", "r.example.org/x"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "unknown lab 'no-such-lab'" in proc.stderr and "Traceback" not in proc.stderr
