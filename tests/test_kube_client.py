"""kubeconfig discovery as kubectl does it, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kube_client.config import KubeconfigError, kubeconfig_candidates, load_api_client


def _write_kubeconfig(path: Path, server: str, token: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
    }))
    return path


def test_explicit_path_wins(tmp_path: Path) -> None:
    path = _write_kubeconfig(tmp_path / "a.yaml", "https://127.0.0.1:6443", "secret-a")
    api = load_api_client(path, environ={"KUBECONFIG": str(tmp_path / "other")})
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer secret-a"


def test_kubeconfig_env_then_home(tmp_path: Path) -> None:
    home_config = _write_kubeconfig(tmp_path / "home" / ".kube" / "config", "https://127.0.0.2:6443", "home")
    env_config = _write_kubeconfig(tmp_path / "env.yaml", "https://127.0.0.3:6443", "env")
    missing = tmp_path / "missing.yaml"
    assert kubeconfig_candidates(environ={"HOME": str(tmp_path / "home")}) == [home_config]
    api = load_api_client(environ={"KUBECONFIG": f"{missing}:{env_config}", "HOME": str(tmp_path / "home")})
    assert api.configuration.host == "https://127.0.0.3:6443"
    api = load_api_client(environ={"HOME": str(tmp_path / "home")})
    assert api.configuration.host == "https://127.0.0.2:6443"


def test_nothing_found_says_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=r"no cluster credentials found; tried: .*nope.yaml \(not found\)"):
        load_api_client(environ={"KUBECONFIG": str(tmp_path / "nope.yaml")})


def test_broken_kubeconfig_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(KubeconfigError, match="kubeconfig .*broken.yaml"):
        load_api_client(broken)
