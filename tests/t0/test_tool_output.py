"""T0: what other programs print is read as bytes and decoded by labkit.proc, never strictly.

Byte strings here are the real encodings of real names: `C:\\Users\\Łukasz` as cp1250 (the ANSI code page
of a Polish Windows), a Russian folder as cp866 (the OEM code page `icacls` prints in on a Russian
console), and bytes that are valid in no encoding at all."""
from __future__ import annotations

import ast
import locale

import pytest

from labkit import proc
from tests.support.env import REPO

POLISH_CP1250 = "Default machine folder:          C:\\Users\\Łukasz\\VirtualBox VMs\n".encode("cp1250")
RUSSIAN_CP866 = "Отказано в доступе.\r\n".encode("cp866")  # icacls' access denied, on a Russian console
BROKEN = b"Default machine folder:          /home/st\xffud\xc3(ent/VMs\n"


def test_utf8_stays_utf8():
    assert proc.text("C:\\Users\\Łukasz".encode("utf-8")) == "C:\\Users\\Łukasz"


@pytest.mark.parametrize("data", [POLISH_CP1250, RUSSIAN_CP866, BROKEN, b"\xff" * 3, b"\x80abc"])
def test_no_bytes_raise(data):
    out = proc.text(data)
    assert isinstance(out, str) and out  # U+FFFD where the locale's encoding does not know a byte


def test_the_windows_code_page_is_used_when_the_bytes_are_not_utf8(monkeypatch):
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "cp1250")
    assert proc.text(POLISH_CP1250) == "Default machine folder:          C:\\Users\\Łukasz\\VirtualBox VMs\n"
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "cp866")
    assert proc.text(RUSSIAN_CP866) == "Отказано в доступе.\r\n"
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "no-such-codec")
    assert "\ufffd" in proc.text(BROKEN)


def test_doctor_reads_a_machine_folder_whose_bytes_are_not_utf8(tmp_path):
    """The disk check on a non-ASCII "Default machine folder" (issue 24: it failed and blocked vm.up)."""
    from labkit import doctor, settings
    from tests.support.laptop import Laptop
    import shutil

    shutil.copy(REPO / "settings.yaml", tmp_path)
    shutil.copytree(REPO / "provision", tmp_path / "provision")
    s = settings.load(tmp_path, {})
    laptop = Laptop(outputs={"vagrant": "Vagrant 2.4.1", "VBoxManage": "7.0.14r161095",
                             "VBoxManage list systemproperties": proc.text(BROKEN)})
    folder = doctor.machine_folder(s, laptop)
    assert str(folder).startswith("/home/st") and folder.name == "VMs"
    assert doctor.check_disk(s, laptop).status == doctor.PASS


@pytest.mark.parametrize("available, chosen", [
    ("C\nC.utf8\nPOSIX\nru_RU.utf8\n", "C.utf8"),       # Debian/Ubuntu spell it C.utf8
    ("C\nC.UTF-8\nen_US.UTF-8\n", "C.UTF-8"),
    ("C\nPOSIX\nen_US.UTF-8\nru_RU.UTF-8\n", "en_US.UTF-8"),  # macOS: no C.UTF-8
    ("C\nPOSIX\n", "C"),
    ("", "C"),                                           # no `locale` program
])
def test_vboxmanage_runs_in_an_english_utf8_locale_where_there_is_one(available, chosen):
    assert proc._english_locale(available) == chosen


def _strict_reads(tree) -> list[tuple[int, str]]:
    """subprocess calls that decode for us (text=, universal_newlines=, encoding=, errors=) or return output
    (check_output, getoutput): each decodes strictly in the locale's encoding."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"):
            continue
        if node.func.attr in ("check_output", "getoutput", "getstatusoutput"):
            found.append((node.lineno, node.func.attr))
        found += [(node.lineno, f"{k.arg}=") for k in node.keywords
                  if k.arg in ("text", "universal_newlines", "encoding", "errors")]
    return found


def test_the_scan_finds_a_strict_read():
    tree = ast.parse("import subprocess\nsubprocess.run(['icacls'],\n    capture_output=True, text=True)\n"
                     "subprocess.check_output(['vagrant'])\n")
    assert sorted(_strict_reads(tree)) == [(2, "text="), (4, "check_output")]


def test_no_module_reads_a_program_strictly():
    """Every subprocess call that captures output reads bytes; check_output appears only where its bytes go to proc.text."""
    allowed = {("labkit/vagrant.py", "check_output")}  # Vagrant._captured: text(subprocess.check_output(...))
    bad = [f"{path.relative_to(REPO).as_posix()}:{lineno}: {what}"
           for path in sorted((REPO / "labkit").rglob("*.py"))
           for lineno, what in _strict_reads(ast.parse(path.read_text(encoding="utf-8")))
           if (path.relative_to(REPO).as_posix(), what) not in allowed]
    assert bad == []
