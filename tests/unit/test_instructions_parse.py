"""Typed instructions: every instruction, its flags, and errors with their lines."""

from __future__ import annotations

import pytest

from layerkit.dockerfile.ast import Node
from layerkit.dockerfile.instructions import (
    AddInstruction,
    ArgDecl,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    HealthcheckInstruction,
    Instruction,
    KeyValue,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopSignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    parse_dockerfile,
    parse_instruction,
    validate_chmod,
)
from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError


def one(text: str) -> Instruction:
    """Type the last instruction of ``text`` (a FROM is prepended when needed)."""
    result = parse(text)
    return parse_instruction(result.instructions[-1], file=result.filename)


def error_of(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(parse(text))
    return info.value


# --- FROM -------------------------------------------------------------------


def test_from_with_platform_and_lowercased_name() -> None:
    instr = one("FROM --platform=linux/arm64 golang:1.22 AS Build\n")
    assert isinstance(instr, FromInstruction)
    assert instr.base_name == "golang:1.22"
    assert instr.stage_name == "build"
    assert instr.platform == "linux/arm64"
    assert (instr.start_line, instr.end_line) == (1, 1)


def test_from_plain_has_no_name() -> None:
    instr = one("FROM alpine\n")
    assert isinstance(instr, FromInstruction)
    assert instr.stage_name is None and instr.platform is None


@pytest.mark.parametrize("name", ["1stage", "my.stage!", "_x", "a/b"])
def test_from_invalid_stage_name(name: str) -> None:
    err = error_of(f"FROM alpine AS {name}\n")
    assert "invalid name for build stage" in err.message
    assert err.location is not None and err.location.line == 1


def test_from_wrong_argument_count() -> None:
    err = error_of("FROM alpine AS\n")
    assert err.message == "FROM requires either one or three arguments"


def test_from_rejects_unknown_flag_with_hint() -> None:
    err = error_of("FROM --platfrom=linux/amd64 alpine\n")
    assert "unknown flag: platfrom" in err.message
    assert err.hint == "did you mean platform?"


# --- RUN ----------------------------------------------------------------------


def test_run_shell_and_exec_forms() -> None:
    shell = one("FROM a\nRUN echo hello  world\n")
    assert isinstance(shell, RunInstruction)
    assert shell.command == ("echo hello  world",) and shell.shell_form
    exec_form = one('FROM a\nRUN ["echo", "hello world"]\n')
    assert isinstance(exec_form, RunInstruction)
    assert exec_form.command == ("echo", "hello world") and not exec_form.shell_form


def test_run_heredoc_kept_as_file() -> None:
    instr = one("FROM a\nRUN <<EOF\necho hi\nEOF\n")
    assert isinstance(instr, RunInstruction)
    assert instr.command == ("<<EOF",)
    assert len(instr.heredocs) == 1
    assert instr.heredocs[0].name == "EOF" and instr.heredocs[0].data == "echo hi\n"
    assert (instr.start_line, instr.end_line) == (2, 4)


def test_run_network_and_security() -> None:
    instr = one("FROM a\nRUN --network=none --security=insecure true\n")
    assert isinstance(instr, RunInstruction)
    assert (instr.network, instr.security) == ("none", "insecure")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--network=bridge", "unsupported network mode 'bridge'"),
        ("--security=root", "security 'root' is not valid"),
        ("--network", "missing a value on flag: network"),
        ("--network=host --network=none", "duplicate flag specified: network"),
    ],
)
def test_run_bad_flags(flag: str, message: str) -> None:
    err = error_of(f"FROM a\n\nRUN {flag} true\n")
    assert message in err.message
    assert err.location is not None and err.location.line == 3


def test_run_mount_typo_suggests() -> None:
    err = error_of("FROM a\nRUN --mont=type=cache,target=/x true\n")
    assert "unknown flag: mont" in err.message and err.hint == "did you mean mount?"


def test_run_mounts_parsed_when_no_variables() -> None:
    instr = one("FROM a\nRUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,dst=/t x\n")
    assert isinstance(instr, RunInstruction)
    assert instr.mounts is not None
    assert [m.type for m in instr.mounts] == ["cache", "tmpfs"]
    assert instr.mounts[0].id == "/root/.cache"


def test_run_mounts_deferred_when_variables() -> None:
    instr = one("FROM a\nRUN --mount=type=$T,target=/x true\n")
    assert isinstance(instr, RunInstruction)
    assert instr.mounts is None and instr.mount_specs == ("type=$T,target=/x",)


def test_run_mount_from_variable_rejected() -> None:
    err = error_of("FROM a\nRUN --mount=from=$img,target=/x true\n")
    assert "'from' doesn't support variable expansion" in err.message


def test_run_mount_invalid_type_suggests() -> None:
    err = error_of("FROM a\nRUN --mount=type=tmp,target=/x true\n")
    assert 'unsupported mount type "tmp"' in err.message.replace("'", '"')
    assert err.hint == "did you mean tmpfs?"


def test_run_mount_unknown_key_suggests() -> None:
    err = error_of("FROM a\nRUN --mount=typ=cache,target=/x true\n")
    assert "unexpected key 'typ'" in err.message and err.hint == "did you mean type?"


# --- COPY / ADD ---------------------------------------------------------------


def test_copy_all_flags() -> None:
    instr = one(
        "FROM a\nCOPY --from=build --chown=1000:1000 --chmod=0755 --link --parents "
        "--exclude=*.md --exclude=tests a b /dest/\n"
    )
    assert isinstance(instr, CopyInstruction)
    assert instr.sources == ("a", "b") and instr.dest == "/dest/"
    assert instr.from_ == "build" and instr.chown == "1000:1000" and instr.chmod == "0755"
    assert instr.link and instr.parents
    assert instr.excludes == ("*.md", "tests")


def test_copy_json_form_keeps_spaces() -> None:
    instr = one('FROM a\nCOPY ["my file.txt", "other", "/dst dir/"]\n')
    assert isinstance(instr, CopyInstruction)
    assert instr.sources == ("my file.txt", "other") and instr.dest == "/dst dir/"


def test_copy_heredoc_sources() -> None:
    instr = one("FROM a\nCOPY <<one <<-two /dest/\nhello\none\n\tindented\ntwo\n")
    assert isinstance(instr, CopyInstruction)
    assert instr.sources == ()
    assert [c.path for c in instr.contents] == ["one", "two"]
    assert instr.contents[0].data == "hello\n"
    assert instr.contents[1].data == "indented\n"  # <<- strips leading tabs


def test_copy_heredoc_quoted_is_not_expanded() -> None:
    instr = one("FROM a\nCOPY <<'EOF' /f\n$HOME\nEOF\n")
    assert isinstance(instr, CopyInstruction)
    assert instr.contents[0].expand is False


def test_copy_needs_destination() -> None:
    err = error_of("FROM a\nCOPY onlyone\n")
    assert "COPY requires at least two arguments" in err.message
    assert err.location is not None and err.location.line == 2


def test_copy_from_variable_rejected() -> None:
    err = error_of("FROM a\nCOPY --from=$IMG /a /b\n")
    assert err.message.startswith("variable expansion is not supported for --from")


def test_copy_rejects_add_only_flag() -> None:
    err = error_of("FROM a\nCOPY --checksum=sha256:abc /a /b\n")
    assert "unknown flag: checksum" in err.message
    assert err.hint is not None and "ADD" in err.hint


def test_add_flags() -> None:
    instr = one(
        "FROM a\nADD --checksum=sha256:0123 --keep-git-dir --unpack=false --chmod=644 "
        "https://example.com/x.tar /x\n"
    )
    assert isinstance(instr, AddInstruction)
    assert instr.checksum == "sha256:0123" and instr.keep_git_dir and instr.unpack is False
    assert instr.sources == ("https://example.com/x.tar",) and instr.dest == "/x"
    plain = one("FROM a\nADD x.tar /x\n")
    assert isinstance(plain, AddInstruction) and plain.unpack is None


def test_add_rejects_from() -> None:
    err = error_of("FROM a\nADD --from=x a b\n")
    assert "unknown flag: from" in err.message


@pytest.mark.parametrize("bad", ["64a", "10000", "8", "u+q"])
def test_chmod_invalid(bad: str) -> None:
    err = error_of(f"FROM a\nCOPY --chmod={bad} a b\n")
    assert f"invalid chmod parameter: '{bad}'" in err.message


@pytest.mark.parametrize("good", ["0644", "777", "0", "u+x", "go-w,a+X", "u=rw,g=r,o=r"])
def test_chmod_valid(good: str) -> None:
    assert validate_chmod(good) is None


def test_bool_flag_values() -> None:
    link_false = one("FROM a\nCOPY --link=FALSE a b\n")
    assert isinstance(link_false, CopyInstruction) and not link_false.link
    err = error_of("FROM a\nCOPY --link=maybe a b\n")
    assert "expecting boolean value for flag link" in err.message


# --- ENV / LABEL / ARG --------------------------------------------------------


def test_env_pairs_and_legacy_form() -> None:
    instr = one('FROM a\nENV A=1 B="two words"\n')
    assert isinstance(instr, EnvInstruction)
    assert instr.pairs == (KeyValue("A", "1"), KeyValue("B", '"two words"'))
    legacy = one("FROM a\nENV PATH /go/bin:$PATH\n")
    assert isinstance(legacy, EnvInstruction)
    assert legacy.pairs == (KeyValue("PATH", "/go/bin:$PATH", legacy=True),)


def test_label_pairs() -> None:
    instr = one('FROM a\nLABEL org.opencontainers.image.title="x y" version=1\n')
    assert isinstance(instr, LabelInstruction)
    assert [p.key for p in instr.pairs] == ["org.opencontainers.image.title", "version"]


def test_arg_several_per_line() -> None:
    instr = one('ARG A B=2 C="x y"\n')
    assert isinstance(instr, ArgInstruction)
    assert instr.args == (ArgDecl("A"), ArgDecl("B", "2"), ArgDecl("C", '"x y"'))


def test_arg_blank_name() -> None:
    err = error_of("ARG =x\n")
    assert err.message == "ARG names can not be blank"


# --- the rest -----------------------------------------------------------------


def test_simple_single_argument_instructions() -> None:
    user = one("FROM a\nUSER app:app\n")
    assert isinstance(user, UserInstruction) and user.user == "app:app"
    wd = one("FROM a\nWORKDIR /app\n")
    assert isinstance(wd, WorkdirInstruction) and wd.path == "/app"
    sig = one("FROM a\nSTOPSIGNAL SIGTERM\n")
    assert isinstance(sig, StopSignalInstruction) and sig.signal == "SIGTERM"
    mt = one("FROM a\nMAINTAINER Jane Doe <jane@example.com>\n")
    assert isinstance(mt, MaintainerInstruction) and mt.maintainer == "Jane Doe <jane@example.com>"


def test_workdir_needs_one_argument() -> None:
    err = error_of("FROM a\nWORKDIR\n")
    assert err.message == "WORKDIR requires exactly one argument"


def test_expose_sorted() -> None:
    instr = one("FROM a\nEXPOSE 8080 443/tcp 53/udp\n")
    assert isinstance(instr, ExposeInstruction)
    assert instr.ports == tuple(sorted(["8080", "443/tcp", "53/udp"]))


def test_volume_json_and_list() -> None:
    js = one('FROM a\nVOLUME ["/data", "/logs"]\n')
    lst = one("FROM a\nVOLUME /data /logs\n")
    assert isinstance(js, VolumeInstruction) and isinstance(lst, VolumeInstruction)
    assert js.volumes == lst.volumes == ("/data", "/logs")


def test_shell_must_be_json() -> None:
    sh = one('FROM a\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\n')
    assert isinstance(sh, ShellInstruction) and sh.shell[0] == "/bin/bash"
    err = error_of("FROM a\nSHELL /bin/bash -c\n")
    assert err.message == "SHELL requires the arguments to be in JSON form"
    assert err.hint is not None and "[" in err.hint


def test_cmd_and_entrypoint_forms() -> None:
    cmd = one("FROM a\nCMD echo hi\n")
    assert isinstance(cmd, CmdInstruction) and cmd.shell_form and cmd.command == ("echo hi",)
    ep = one('FROM a\nENTRYPOINT ["/bin/app", "--serve"]\n')
    assert isinstance(ep, EntrypointInstruction) and not ep.shell_form
    assert ep.command == ("/bin/app", "--serve")
    empty = one("FROM a\nENTRYPOINT []\n")
    assert isinstance(empty, EntrypointInstruction) and empty.command == ()


def test_healthcheck_cmd_with_durations() -> None:
    hc = one(
        "FROM a\nHEALTHCHECK --interval=1m30s --timeout=3s --start-period=500ms "
        "--start-interval=2s --retries=5 CMD curl -f http://localhost/ || exit 1\n"
    )
    assert isinstance(hc, HealthcheckInstruction)
    assert hc.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert hc.interval == 90 * 10**9 and hc.timeout == 3 * 10**9
    assert hc.start_period == 500 * 10**6 and hc.start_interval == 2 * 10**9
    assert hc.retries == 5


def test_healthcheck_exec_and_none() -> None:
    hc = one('FROM a\nHEALTHCHECK CMD ["/bin/check", "-v"]\n')
    assert isinstance(hc, HealthcheckInstruction) and hc.test == ("CMD", "/bin/check", "-v")
    none = one("FROM a\nHEALTHCHECK NONE\n")
    assert isinstance(none, HealthcheckInstruction) and none.test == ("NONE",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HEALTHCHECK --interval=10 CMD x", "missing unit in duration"),
        ("HEALTHCHECK --interval=xyz CMD x", "invalid duration"),
        ("HEALTHCHECK --timeout=10us CMD x", 'Interval "timeout" cannot be less than 1ms'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=abc CMD x", "invalid syntax"),
        ("HEALTHCHECK NONE extra", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ],
)
def test_healthcheck_errors(text: str, message: str) -> None:
    err = error_of(f"FROM a\n{text}\n")
    assert message in err.message


def test_onbuild_types_its_trigger() -> None:
    ob = one("FROM a\nONBUILD COPY --from=build /out /app\n")
    assert isinstance(ob, OnbuildInstruction)
    assert isinstance(ob.trigger, CopyInstruction) and ob.trigger.from_ == "build"
    assert ob.expression == "COPY --from=build /out /app"
    assert ob.trigger.start_line == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM alpine", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ],
)
def test_onbuild_forbidden(text: str, message: str) -> None:
    assert error_of(f"FROM a\n{text}\n").message == message


def test_onbuild_nested_errors_surface() -> None:
    err = error_of("FROM a\nONBUILD COPY --bogus a b\n")
    assert "unknown flag: bogus" in err.message


def test_unknown_instruction_did_you_mean() -> None:
    err = error_of("FROM a\n\nRUNN echo\n")
    assert err.message == "unknown instruction: RUNN"
    assert err.hint == "did you mean RUN?"
    assert err.location is not None and err.location.line == 3
    assert "RUNN echo" in err.location.text


def test_unknown_instruction_from_hand_built_node() -> None:
    node = Node(value="FNTRYPOINT", next=[Node(value="x")], start_line=7, end_line=7,
                original="FNTRYPOINT x")
    with pytest.raises(DockerfileError) as info:
        parse_instruction(node, file="Containerfile")
    assert info.value.hint == "did you mean ENTRYPOINT?"
    assert info.value.location is not None
    assert (info.value.location.file, info.value.location.line) == ("Containerfile", 7)


def test_instruction_before_from() -> None:
    err = error_of("RUN echo\nFROM a\n")
    assert "no build stage in current context" in err.message


def test_parse_dockerfile_groups_meta_args_and_stages() -> None:
    df = parse_dockerfile(parse("ARG V=1\nFROM a AS one\nRUN x\nFROM one\nCOPY a b\n"))
    assert [a.args[0].name for a in df.meta_args] == ["V"]
    assert [s.from_.stage_name for s in df.stages] == ["one", None]
    assert [type(i).__name__ for i in df.stages[0].instructions] == ["RunInstruction"]


def test_instructions_are_immutable() -> None:
    instr = one("FROM a\nUSER x\n")
    with pytest.raises(AttributeError):
        instr.user = "y"  # type: ignore[attr-defined]


def test_location_carries_original_text() -> None:
    instr = one("FROM a\nRUN apt-get update && \\\n    apt-get install -y curl\n")
    loc = instr.location
    assert (loc.line, loc.end_line) == (2, 3)
    assert "apt-get install" in loc.text


def test_add_checksum_requires_a_remote_source() -> None:
    from layerkit.dockerfile.instructions import AddInstruction, parse_dockerfile
    from layerkit.dockerfile.parser import parse
    from layerkit.errors import DockerfileError

    ok = parse_dockerfile(parse(
        "FROM scratch\nADD --checksum=sha256:" + "a" * 64 + " https://example.com/x.tgz /x\n"
    ))
    add = ok.stages[0].instructions[0]
    assert isinstance(add, AddInstruction) and add.checksum is not None
    with pytest.raises(DockerfileError, match="checksum requires HTTP"):
        parse_dockerfile(
            parse("FROM scratch\nADD --checksum=sha256:" + "a" * 64 + " local.tgz /x\n")
        )
