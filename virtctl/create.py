"""`virtctl create vm`: print a VirtualMachine manifest built from flags (nothing is sent
to the cluster; pipe it to `kubectl create -f -`)."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from pathlib import Path
from typing import Any

import click
import yaml
from click.core import ParameterSource

from kube_client.quantity import exact_quantity
from kubevirt_api.phases import RunStrategy
from virtctl.clientconfig import cluster_options, current_options
from virtctl.cloud_init import NONE, SOURCES, CloudInitRequest
from virtctl.vm_manifest import VMRequest, build_vm

# Run strategies a user may ask for (WaitAsReceiver is set by migrations, never by hand).
RUN_STRATEGIES = [s.value for s in RunStrategy if s is not RunStrategy.WAIT_AS_RECEIVER]
# What k8s.io/apimachinery's rand.String draws from: no vowels, so no words by accident.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CLOUD_INIT_GENERATORS = ("user", "password_file", "ssh_key", "ga_manage_ssh")


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (cloud-init user data) as | blocks, readable and editable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def to_yaml(obj: dict[str, Any]) -> str:
    text: str = yaml.dump(obj, Dumper=_LiteralDumper, sort_keys=True, default_flow_style=False, width=10**6)
    return text


@click.group()
def create() -> None:
    """Create a manifest for the specified Kind."""


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


def _check_exclusive(ctx: click.Context, first: str, others: tuple[str, ...]) -> None:
    if not _given(ctx, first):
        return
    clash = [o for o in others if _given(ctx, o)]
    if clash:
        names = ", ".join("--" + n.replace("_", "-") for n in (first, *clash))
        raise click.UsageError(f"these flags are mutually exclusive: {names}")


def _name(value: str | None) -> str:
    if not value:
        return "vm-" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise click.BadParameter("must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.')",
                                 param_hint="'--name'")
    return value


def _memory(value: str) -> str:
    try:
        exact_quantity(value)
    except (ValueError, TypeError):
        raise click.BadParameter(f"{value!r} is not a quantity (e.g. 512Mi, 2Gi)", param_hint="'--memory'") from None
    return value.strip()


def _base64(flag: str, value: str | None) -> str:
    if not value:
        return ""
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise click.BadParameter("must be base64 encoded", param_hint=f"'--{flag}'") from None
    return value


def _password(path: str | None) -> str:
    if not path:
        return ""
    try:
        password = Path(path).read_text().strip()
    except OSError as error:
        raise click.BadParameter(f"{path}: {error.strerror}", param_hint="'--password-file'") from None
    click.echo("WARNING: --password-file: The password is stored in cleartext in the VM definition!", err=True)
    return password


def _ssh_keys(values: tuple[str, ...]) -> tuple[str, ...]:
    # Like cobra's string-slice flags: repeatable, and each value may list keys separated by commas.
    return tuple(key.strip() for value in values for key in value.split(",") if key.strip())


def _cloud_init(ctx: click.Context, params: dict[str, Any]) -> CloudInitRequest:
    source = params["cloud_init"].lower()
    request = CloudInitRequest(
        source=source, source_given=_given(ctx, "cloud_init"),
        user_data_base64=_base64("cloud-init-user-data", params["cloud_init_user_data"]),
        network_data_base64=_base64("cloud-init-network-data", params["cloud_init_network_data"]),
        user=params["user"] or "", password=_password(params["password_file"]),
        ssh_keys=_ssh_keys(params["ssh_key"]), ga_manage_ssh=params["ga_manage_ssh"])
    others = ("password_file", "ssh_key", "ga_manage_ssh", "cloud_init_user_data", "cloud_init_network_data")
    if source == NONE and any(_given(ctx, o) for o in others):
        click.echo("WARNING: --cloud-init: was set to none, not creating a data source although other "
                   "cloud-init options were set", err=True)
    return request


@create.command("vm")
@click.option("--name", help="Name of the VM (default: vm- and five random characters).")
@click.option("--run-strategy", type=click.Choice(RUN_STRATEGIES, case_sensitive=False), default="Always",
              metavar="[" + "|".join(RUN_STRATEGIES) + "]", show_default=True, help="RunStrategy of the VM.")
@click.option("--termination-grace-period", type=int, default=180, show_default=True,
              help="Termination grace period of the VM, in seconds.")
@click.option("--memory", default="512Mi", show_default=True, help="Guest memory of the VM.")
@click.option("--instancetype", metavar="[KIND/]NAME",
              help="Instance type of the VM (virtualmachineclusterinstancetype unless a kind is given).")
@click.option("--preference", metavar="[KIND/]NAME",
              help="Preference of the VM (virtualmachineclusterpreference unless a kind is given).")
@click.option("--volume-containerdisk", multiple=True, metavar="src:IMAGE[,name:NAME][,bootorder:N]",
              help="A container disk used by the VM. Can be given multiple times.")
@click.option("--volume-pvc", multiple=True, metavar="src:CLAIM[,name:NAME][,bootorder:N]",
              help="A PersistentVolumeClaim used by the VM. Can be given multiple times.")
@click.option("--user", help="The user in the generated cloud-init user data.")
@click.option("--password-file", metavar="PATH", help="A file with the password for the generated cloud-init "
                                                      "user data (stored in cleartext in the VM).")
@click.option("--ssh-key", multiple=True, help="An SSH authorized key for the generated cloud-init user data. "
                                               "Can be given multiple times.")
@click.option("--ga-manage-ssh", is_flag=True, default=False,
              help="Let the qemu-guest-agent manage SSH keys (sets the SELinux boolean in the user data).")
@click.option("--cloud-init", type=click.Choice([*SOURCES, NONE], case_sensitive=False), default="nocloud",
              show_default=True, help="Type of the generated cloud-init data source.")
@click.option("--cloud-init-user-data", metavar="BASE64", help="Base64 encoded cloud-init user data of the VM.")
@click.option("--cloud-init-network-data", metavar="BASE64", help="Base64 encoded cloud-init network data of the VM.")
@cluster_options
@click.pass_context
def create_vm(ctx: click.Context, /, **params: Any) -> None:
    """Create a VirtualMachine manifest.

    If no boot order is given, volumes boot in this order: container disks, then PVCs.

    \b
    Examples:
      virtctl create vm --name=my-vm --memory=1Gi --volume-containerdisk=src:quay.io/containerdisks/fedora:40
      virtctl create vm --volume-pvc=src:my-pvc --user=fedora --ssh-key="ssh-ed25519 AAAA..."
      virtctl create vm --cloud-init-user-data="$(base64 -w0 user-data.yaml)" | kubectl create -f -
    """
    _check_exclusive(ctx, "memory", ("instancetype",))
    _check_exclusive(ctx, "cloud_init_user_data", _CLOUD_INIT_GENERATORS)
    request = VMRequest(
        name=_name(params["name"]), namespace=current_options().namespace,
        run_strategy=params["run_strategy"], termination_grace_period=params["termination_grace_period"],
        memory=_memory(params["memory"]), instancetype=params["instancetype"], preference=params["preference"],
        containerdisks=params["volume_containerdisk"], pvcs=params["volume_pvc"],
        cloud_init=_cloud_init(ctx, params))
    click.echo(to_yaml(build_vm(request)), nl=False)
