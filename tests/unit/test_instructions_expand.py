"""Dispatch-time expansion of instruction words, flags parsing and Go durations."""

from __future__ import annotations

import pytest

from layerkit.dockerfile.durations import format_duration, parse_duration
from layerkit.dockerfile.expand import expand_instruction
from layerkit.dockerfile.flags import FlagError, FlagKind, FlagSpec, parse_flags, suggest
from layerkit.dockerfile.instructions import (
    AddInstruction,
    CmdInstruction,
    CopyInstruction,
    EnvInstruction,
    ExposeInstruction,
    Instruction,
    RunInstruction,
    StopSignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    normalize_ports,
    parse_instruction,
)
from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError


def one(text: str) -> Instruction:
    result = parse(text)
    return parse_instruction(result.instructions[-1])


def test_env_expands_keys_and_values_and_reports_matches() -> None:
    exp = expand_instruction(one('FROM a\nENV A=$X B="${Y:-def} z" $K=v\n'), {"X": "1", "K": "KEY"})
    instr = exp.instruction
    assert isinstance(instr, EnvInstruction)
    assert [(p.key, p.value) for p in instr.pairs] == [("A", "1"), ("B", "def z"), ("KEY", "v")]
    assert exp.matched == {"X", "K"} and exp.unmatched == {"Y"}


def test_env_literal_percent_kept() -> None:
    exp = expand_instruction(one("FROM a\nENV myenv foo%sbar\n"), {})
    assert isinstance(exp.instruction, EnvInstruction)
    assert exp.instruction.pairs[0].value == "foo%sbar"


def test_copy_expands_sources_dest_chown_chmod_but_not_from_or_exclude() -> None:
    instr = one("FROM a\nCOPY --from=build --chown=$U:$G --chmod=$M --exclude=$E $SRC $DST\n")
    env = {"U": "app", "G": "grp", "M": "0640", "E": "x", "SRC": "bar", "DST": "/baz"}
    exp = expand_instruction(instr, env)
    out = exp.instruction
    assert isinstance(out, CopyInstruction)
    assert out.sources == ("bar",) and out.dest == "/baz"
    assert out.chown == "app:grp" and out.chmod == "0640"
    assert out.from_ == "build" and out.excludes == ("$E",)
    assert "E" not in exp.matched and {"U", "G", "M", "SRC", "DST"} <= exp.matched


def test_copy_bad_chmod_after_expansion() -> None:
    with pytest.raises(DockerfileError) as info:
        expand_instruction(one("FROM a\nCOPY --chmod=$M a b\n"), {"M": "10000"})
    assert "invalid chmod parameter: '10000'" in info.value.message


def test_copy_empty_dest_from_unset_var() -> None:
    exp = expand_instruction(one("FROM a\nCOPY testfile $empty\n"), {})
    assert isinstance(exp.instruction, CopyInstruction)
    assert exp.instruction.dest == "" and exp.unmatched == {"empty"}


def test_copy_heredoc_expansion_respects_quoting() -> None:
    env = {"name": "world"}
    plain = expand_instruction(one('FROM a\nCOPY <<EOF /f\nhi "${name}"\nEOF\n'), env)
    assert isinstance(plain.instruction, CopyInstruction)
    assert plain.instruction.contents[0].data == 'hi "world"\n'  # quotes stay literal
    quoted = expand_instruction(one("FROM a\nCOPY <<'EOF' /f\nhi ${name}\nEOF\n"), env)
    assert isinstance(quoted.instruction, CopyInstruction)
    assert quoted.instruction.contents[0].data == "hi ${name}\n"


def test_add_expands_checksum() -> None:
    exp = expand_instruction(one("FROM a\nADD --checksum=$D $LINK /x\n"),
                             {"D": "sha256:00", "LINK": "https://h/f"})
    assert isinstance(exp.instruction, AddInstruction)
    assert exp.instruction.checksum == "sha256:00" and exp.instruction.sources == ("https://h/f",)


def test_expose_splits_after_expansion() -> None:
    exp = expand_instruction(one("FROM a\nEXPOSE $PORTS 5000\n"), {"PORTS": "3000 4000/udp"})
    assert isinstance(exp.instruction, ExposeInstruction)
    assert sorted(exp.instruction.ports) == ["3000", "4000/udp", "5000"]
    assert normalize_ports(exp.instruction.ports) == ("3000/tcp", "4000/udp", "5000/tcp")


def test_expose_invalid_port() -> None:
    with pytest.raises(DockerfileError) as info:
        expand_instruction(one("FROM a\nEXPOSE $P\n"), {"P": "80/http"})
    assert "invalid proto" in info.value.message


def test_single_word_instructions_expand() -> None:
    env = {"D": "/app", "U": "1000", "S": "SIGQUIT", "V": "/data"}
    wd = expand_instruction(one("FROM a\nWORKDIR $D/src\n"), env).instruction
    assert isinstance(wd, WorkdirInstruction) and wd.path == "/app/src"
    user = expand_instruction(one("FROM a\nUSER ${U}:${U}\n"), env).instruction
    assert isinstance(user, UserInstruction) and user.user == "1000:1000"
    sig = expand_instruction(one("FROM a\nSTOPSIGNAL $S\n"), env).instruction
    assert isinstance(sig, StopSignalInstruction) and sig.signal == "SIGQUIT"
    vol = expand_instruction(one("FROM a\nVOLUME $V /logs\n"), env).instruction
    assert isinstance(vol, VolumeInstruction) and vol.volumes == ("/data", "/logs")


def test_stopsignal_invalid() -> None:
    with pytest.raises(DockerfileError) as info:
        expand_instruction(one("FROM a\nSTOPSIGNAL SIGNOPE\n"), {})
    assert "Invalid signal" in info.value.message


def test_run_command_is_not_expanded_but_mounts_are() -> None:
    instr = one("FROM a\nRUN --mount=type=$T,target=$P,id=$ID echo $HOME\n")
    exp = expand_instruction(instr, {"T": "cache", "P": "/c", "ID": "mine", "HOME": "/root"})
    out = exp.instruction
    assert isinstance(out, RunInstruction)
    assert out.command == ("echo $HOME",)
    assert out.mounts is not None and out.mounts[0].type == "cache"
    assert (out.mounts[0].target, out.mounts[0].id) == ("/c", "mine")
    assert "HOME" not in exp.matched


def test_ssh_mounts_get_numbered_sockets() -> None:
    instr = one("FROM a\nRUN --mount=type=ssh --mount=type=ssh,id=b x\n")
    assert isinstance(instr, RunInstruction) and instr.mounts is not None
    assert [m.target for m in instr.mounts] == ["/run/buildkit/ssh_agent.0",
                                                 "/run/buildkit/ssh_agent.1"]


def test_cmd_is_never_expanded() -> None:
    instr = one("FROM a\nCMD echo $HOME\n")
    exp = expand_instruction(instr, {"HOME": "/root"})
    assert exp.instruction is instr and not exp.matched


def test_expansion_error_has_location() -> None:
    with pytest.raises(DockerfileError) as info:
        expand_instruction(one('FROM a\n\nENV A=${B:?"custom error"}\n'), {})
    assert "custom error" in info.value.message
    assert info.value.location is not None and info.value.location.line == 3


def test_escape_token_is_used() -> None:
    exp = expand_instruction(one("# escape=`\nFROM a\nENV A=`$B\n"), {"B": "x"}, escape_token="`")
    assert isinstance(exp.instruction, EnvInstruction)
    assert exp.instruction.pairs[0].value == "$B"


# --- flags -----------------------------------------------------------------


SPECS = (FlagSpec("link", FlagKind.BOOL), FlagSpec("from", FlagKind.STRING),
         FlagSpec("exclude", FlagKind.STRINGS))


def test_flags_repeatable_and_stop() -> None:
    parsed = parse_flags(["--exclude=a", "--exclude=b", "--link", "--", "--from=x"], SPECS,
                         instruction="COPY")
    assert parsed.strings("exclude") == ("a", "b") and parsed.boolean("link")
    assert parsed.string("from") is None and parsed.used == ("exclude", "exclude", "link")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["from=x"], "flag should start with --"),
        (["--from"], "missing a value on flag: from"),
        (["--link="], "missing a value on flag: link"),
        (["--from=a", "--from=b"], "duplicate flag specified: from"),
        (["--frmo=a"], "unknown flag: frmo"),
    ],
)
def test_flag_errors(raw: list[str], message: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_flags(raw, SPECS, instruction="COPY")
    assert message in info.value.message


def test_suggest() -> None:
    assert suggest("mont", ["mount", "network"]) == "mount"
    assert suggest("zzzzzz", ["mount"]) is None


# --- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9),
     ("250ms", 250 * 10**6), ("10us", 10_000), ("10µs", 10_000), ("-2s", -2 * 10**9),
     ("1h2m3s4ms5us6ns", 3723004005006)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "1", "1x", "1.s.", "--1s", "1 s"])
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_roundtrip() -> None:
    for text in ("30s", "1m30s", "2h", "250ms"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_cmd_instruction_type_kept() -> None:
    assert isinstance(one("FROM a\nCMD x\n"), CmdInstruction)
