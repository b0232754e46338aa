"""VMI spec -> libvirt domain XML, checked by libvirt's own parser (the test driver)."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
import yaml

from virt_launcher.domain.converter import domain_xml
from virt_launcher.domain.errors import UnsupportedSpec
from virt_launcher.domain.options import DomainOptions

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream_examples"
OPTIONS = DomainOptions(domain_type="qemu", serial_socket=Path("/run/kv/serial0"), serial_log=Path("/run/kv/s.log"))


@dataclass(frozen=True)
class Disk:
    path: Path
    format: str = "qcow2"
    type: str = "file"
    read_only: bool = False


def _vmi(name: str) -> dict:
    vmi = yaml.safe_load((EXAMPLES / name).read_text())
    vmi["metadata"].update({"namespace": "default", "uid": "6a1b5c0e-0000-4000-8000-000000000001"})
    return vmi


def _disks(vmi: dict) -> dict[str, Disk]:
    return {v["name"]: Disk(Path(f"/var/run/kv/{v['name']}.img"),
                            "raw" if "cloudInitNoCloud" in v else "qcow2") for v in vmi["spec"]["volumes"]}


@pytest.fixture(scope="module")
def test_driver():
    connection = libvirt.open("test:///default")
    yield connection
    connection.close()


def test_nocloud_example(test_driver) -> None:
    vmi = _vmi("vmi-nocloud.yaml")
    xml = domain_xml(vmi, _disks(vmi), OPTIONS)
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu" and root.findtext("name") == "default_vmi-nocloud"
    assert root.findtext("memory") == str(128 * 1024)
    assert [t.get("dev") for t in root.iter("target") if t.get("bus")] == ["vda", "vdb", "vdc"]
    assert root.find("features/acpi") is not None
    assert root.find("devices/serial/source").get("path") == "/run/kv/serial0"
    assert root.find("devices/serial/log").get("file") == "/run/kv/s.log"
    assert root.find("devices/interface").get("type") == "user"
    assert root.find("os/type").get("machine") == "q35"
    domain = test_driver.defineXML(xml)  # libvirt's own parser accepts it
    assert domain.name() == "default_vmi-nocloud"
    domain.undefine()


def test_cpu_firmware_clock_and_buses(test_driver) -> None:
    vmi = _vmi("vmi-windows.yaml")
    vmi["spec"]["domain"]["features"].pop("hyperv")
    vmi["spec"]["domain"]["cpu"].update({"sockets": 2, "threads": 1})
    vmi["spec"]["domain"]["firmware"]["serial"] = "abc-123"
    vmi["spec"]["domain"]["devices"]["disks"][0].update({"bootOrder": 1, "cache": "writethrough"})
    root = ET.fromstring(domain_xml(vmi, _disks(vmi), OPTIONS))
    assert root.findtext("vcpu") == "4"
    topology = root.find("cpu/topology")
    assert (topology.get("sockets"), topology.get("cores"), topology.get("threads")) == ("2", "2", "1")
    assert root.findtext("uuid") == "5d307ca9-b3ef-428c-8861-06e72d69f223"
    assert root.find("sysinfo/system/entry[@name='serial']").text == "abc-123"
    disk = root.find("devices/disk")
    assert disk.find("target").get("bus") == "sata" and disk.find("boot").get("order") == "1"
    assert disk.find("driver").get("cache") == "writethrough"
    assert root.find("devices/interface/model").get("type") == "e1000"
    assert {t.get("name"): t.get("present") for t in root.iter("timer")}["hpet"] == "no"
    test_driver.defineXML(ET.tostring(root, encoding="unicode")).undefine()


def test_kernel_boot() -> None:
    vmi = _vmi("vmi-kernel-boot.yaml")
    options = DomainOptions(domain_type="qemu", serial_socket=Path("/s"), kernel=Path("/k/vmlinuz"),
                            initrd=Path("/k/initrd"))
    root = ET.fromstring(domain_xml(vmi, {}, options))
    assert root.findtext("os/kernel") == "/k/vmlinuz" and root.findtext("os/initrd") == "/k/initrd"
    assert root.findtext("os/cmdline") == "console=ttyS0"


def test_same_vmi_same_uuid() -> None:
    vmi = _vmi("vmi-ephemeral.yaml")
    first = ET.fromstring(domain_xml(vmi, _disks(vmi), OPTIONS)).findtext("uuid")
    assert first == ET.fromstring(domain_xml(copy.deepcopy(vmi), _disks(vmi), OPTIONS)).findtext("uuid")


@pytest.mark.parametrize("change, field", [
    (lambda s: s["domain"]["devices"].update(gpus=[{"name": "g", "deviceName": "x"}]), "spec.domain.devices.gpus"),
    (lambda s: s["domain"].update(cpu={"model": "host-passthrough"}), "spec.domain.cpu.model"),
    (lambda s: s["domain"]["devices"]["disks"].append({"name": "ghost", "disk": {}}),
     "spec.domain.devices.disks[3].name"),
    (lambda s: s["domain"]["devices"].update(interfaces=[{"name": "default", "bridge": {}}]),
     "spec.domain.devices.interfaces[0].bridge"),
    (lambda s: (s["domain"]["devices"].update(interfaces=[{"name": "m", "masquerade": {}}]),
                s.update(networks=[{"name": "m", "multus": {"networkName": "x"}}])), "spec.networks[0].multus"),
    (lambda s: s["domain"].update(features={"hyperv": {"relaxed": {}}}), "spec.domain.features.hyperv"),
    (lambda s: s["domain"]["resources"]["requests"].update(memory="lots"), "spec.domain.resources.requests.memory"),
    (lambda s: s["domain"].update(firmware={"bootloader": {"efi": {}}}), "spec.domain.firmware.bootloader.efi"),
    (lambda s: s["domain"]["devices"]["disks"][0].update(lun={"bus": "virtio"}),
     "spec.domain.devices.disks[0].lun.bus"),
])
def test_unsupported_specs_name_the_field(change, field: str) -> None:
    vmi = _vmi("vmi-nocloud.yaml")
    change(vmi["spec"])
    with pytest.raises(UnsupportedSpec) as error:
        domain_xml(vmi, _disks(vmi), OPTIONS)
    assert field in [p.field for p in error.value.problems], str(error.value)


def test_all_problems_are_reported_together() -> None:
    vmi = _vmi("vmi-nocloud.yaml")
    vmi["spec"]["domain"]["devices"]["gpus"] = []
    vmi["spec"]["domain"]["cpu"] = {"model": "host-model"}
    with pytest.raises(UnsupportedSpec) as error:
        domain_xml(vmi, _disks(vmi), OPTIONS)
    assert {p.field for p in error.value.problems} == {"spec.domain.devices.gpus", "spec.domain.cpu.model"}
