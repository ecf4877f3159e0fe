"""Reads RUN scripts: splits shell text into simple commands and recognises
package-manager invocations (what is installed, by which tool, with which options).

This is a deliberately small, forgiving reader, not a shell: it only has to find
``pip install -r requirements.txt`` inside ``apt-get update && ... && pip ...``.
"""

from __future__ import annotations

import re

from layerkit.fastclass import dataclass, field

_OPERATORS = ("&&", "||", ";;", ";", "|", "&", "\n", "(", ")")
_WRAPPERS = {"sudo", "time", "nice", "exec", "command", "nohup", "eatmydata", "doas"}
_KEYWORDS = {"then", "do", "else", "elif", "if", "while", "until", "!", "{", "}"}
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def split_commands(script: str) -> list[list[str]]:
    """Split shell text into simple commands, each a list of unquoted words."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    n = len(script)

    def end_word() -> None:
        nonlocal word, in_word
        if in_word:
            words.append("".join(word))
        word, in_word = [], False

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append(words)
        words = []

    while i < n:
        ch = script[i]
        if ch == "\\" and i + 1 < n:
            if script[i + 1] == "\n":  # line continuation
                i += 2
                continue
            word.append(script[i + 1])
            in_word = True
            i += 2
            continue
        if ch == "'":
            end = script.find("'", i + 1)
            end = n if end < 0 else end
            word.append(script[i + 1 : end])
            in_word = True
            i = end + 1
            continue
        if ch == '"':
            j = i + 1
            buf: list[str] = []
            while j < n and script[j] != '"':
                if script[j] == "\\" and j + 1 < n and script[j + 1] in '"\\$`':
                    buf.append(script[j + 1])
                    j += 2
                    continue
                buf.append(script[j])
                j += 1
            word.append("".join(buf))
            in_word = True
            i = j + 1
            continue
        if ch == "#" and not in_word:
            end = script.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in " \t\r":
            end_word()
            i += 1
            continue
        op = next((o for o in _OPERATORS if script.startswith(o, i)), None)
        if op is not None and not (op in "()" and in_word):
            end_command()
            i += len(op)
            continue
        word.append(ch)
        in_word = True
        i += 1
    end_command()
    return [strip_prefix(c) for c in commands if strip_prefix(c)]


def strip_prefix(words: list[str]) -> list[str]:
    """Drop leading assignments, ``sudo``/``env``-style wrappers and shell keywords."""
    i = 0
    while i < len(words):
        word = words[i]
        if _ASSIGN.match(word) or word in _KEYWORDS or word in _WRAPPERS:
            i += 1
            continue
        if word == "env":
            i += 1
            while i < len(words) and (words[i].startswith("-") or _ASSIGN.match(words[i])):
                i += 1
            continue
        break
    return words[i:]


def assignments(words: list[str]) -> dict[str, str]:
    """Leading ``NAME=value`` words of a raw command (before wrappers are dropped)."""
    out: dict[str, str] = {}
    for word in words:
        if not _ASSIGN.match(word):
            break
        name, _, value = word.partition("=")
        out[name] = value
    return out


def program(word: str) -> str:
    """``/usr/local/bin/pip3.12`` -> ``pip3.12``; ``./mvnw`` -> ``mvnw``."""
    return word.rsplit("/", 1)[-1]


# ecosystem of each manager: a second install in the same ecosystem after COPY . .
# is expected once dependencies were installed from the manifests.
ECOSYSTEM = {
    "pip": "python", "uv": "python", "poetry": "python", "pipenv": "python",
    "npm": "node", "yarn": "node", "pnpm": "node", "bundle": "ruby", "go": "go",
    "cargo": "rust", "composer": "php", "maven": "maven", "gradle": "gradle",
    "apt": "system", "apk": "system", "rpm": "system",
}

# tools that only bootstrap a package manager: cheap, not worth a cache mount
_BOOTSTRAP = {
    "pip", "setuptools", "wheel", "uv", "poetry", "pipenv", "pip-tools", "virtualenv",
    "npm", "yarn", "pnpm", "corepack", "bundler",
}


@dataclass
class Install:
    """One package-manager command found in a RUN."""

    manager: str  # pip uv poetry pipenv npm yarn pnpm bundle go cargo composer maven gradle...
    kind: str  # deps (from manifests), build (compiles), global (named packages), system
    words: list[str]
    packages: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # manifests named on the command line
    needs_source: bool = False  # e.g. ``pip install .``
    no_cache: bool = False  # the command itself disables its download cache
    virtual: str | None = None  # ``apk add --virtual NAME``

    @property
    def ecosystem(self) -> str:
        return ECOSYSTEM[self.manager]

    @property
    def bootstrap_only(self) -> bool:
        names = [re.split(r"[<>=!~\[@ ]", p.lower(), maxsplit=1)[0] for p in self.packages]
        return self.kind == "global" and bool(names) and all(n in _BOOTSTRAP for n in names)

    def text(self) -> str:
        return " ".join(self.words[:4])


def _operands(args: list[str], with_value: set[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            if arg in with_value:
                skip = True
            continue
        out.append(arg)
    return out


def _pip(words: list[str], args: list[str], manager: str = "pip") -> Install | None:
    if not args or args[0] != "install":
        return None
    rest = args[1:]
    files: list[str] = []
    packages: list[str] = []
    needs_source = False
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-r", "--requirement", "-c", "--constraint") and i + 1 < len(rest):
            files.append(rest[i + 1])
            i += 2
            continue
        if arg.startswith("-r") and len(arg) > 2 and not arg.startswith("--"):
            files.append(arg[2:])
        elif arg.startswith("--requirement="):
            files.append(arg.split("=", 1)[1])
        elif arg in ("-e", "--editable") and i + 1 < len(rest):
            needs_source = needs_source or _is_local(rest[i + 1])
            i += 2
            continue
        elif arg in ("-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                     "--target", "-t", "--prefix", "--root", "--platform", "--python-version",
                     "--implementation", "--abi", "--trusted-host", "--cache-dir", "--src",
                     "--progress-bar", "--report", "--python"):
            i += 2
            continue
        elif not arg.startswith("-"):
            if _is_local(arg):
                needs_source = True
            else:
                packages.append(arg)
        i += 1
    kind = "deps" if files or needs_source else "global"
    no_cache = "--no-cache-dir" in rest or "--no-cache" in rest
    return Install(manager, kind, words, packages, files, needs_source, no_cache)


def _is_local(arg: str) -> bool:
    return arg in (".", "./") or arg.startswith(("./", "../", "/", ".[")) or arg.startswith(".[")


def classify(words: list[str]) -> Install | None:
    """Recognise a package-manager command in one simple command."""
    if not words:
        return None
    prog = program(words[0]).lower()
    args = words[1:]
    if re.fullmatch(r"pip[0-9.]*", prog):
        return _pip(words, args)
    if re.fullmatch(r"python[0-9.]*", prog):
        if len(args) >= 2 and args[0] == "-m" and re.fullmatch(r"pip[0-9.]*", args[1]):
            return _pip(words, args[2:])
        return None
    if prog == "uv":
        ops = [a for a in args if not a.startswith("-")]
        if ops[:2] in (["pip", "install"], ["pip", "sync"]):
            found = _pip(words, ["install", *args[args.index("pip") + 2 :]], "uv")
            if found is not None:
                found.manager = "uv"
                if ops[1] == "sync":
                    found.kind = "deps"
                found.no_cache = "--no-cache" in args
            return found
        if ops[:1] == ["sync"]:
            return Install("uv", "deps", words, no_cache="--no-cache" in args,
                           needs_source="--no-install-project" not in args)
        if ops[:2] == ["tool", "install"]:
            return Install("uv", "global", words, packages=ops[2:], no_cache="--no-cache" in args)
        return None
    if prog == "poetry":
        if args[:1] == ["install"]:
            return Install("poetry", "deps", words, no_cache="--no-cache" in args,
                           needs_source="--no-root" not in args and "--only-root" not in args)
        return None
    if prog == "pipenv" and args[:1] in (["install"], ["sync"]):
        return Install("pipenv", "deps", words)
    if prog == "npm":
        ops = _operands(args, {"--prefix", "-w", "--workspace", "--cache", "--registry"})
        if ops[:1] in (["ci"], ["install"], ["i"], ["add"], ["isntall"]):
            if "-g" in args or "--global" in args:
                return Install("npm", "global", words, packages=ops[1:])
            return Install("npm", "deps", words, packages=ops[1:])
        return None
    if prog == "yarn":
        ops = _operands(args, {"--cache-folder", "--modules-folder", "--network-timeout",
                               "--registry", "--mutex", "--cwd"})
        if not ops or ops[0] == "install":
            if any(a in ("--help", "-h", "-v", "--version") for a in args):
                return None
            return Install("yarn", "deps", words)
        if ops[:2] == ["global", "add"]:
            return Install("yarn", "global", words, packages=ops[2:])
        if ops[0] == "add":
            return Install("yarn", "deps", words, packages=ops[1:])
        return None
    if prog == "pnpm":
        ops = _operands(args, {"--filter", "-F", "--store-dir", "--dir", "-C"})
        if ops[:1] in (["install"], ["i"], ["add"], ["fetch"]):
            if "-g" in args or "--global" in args:
                return Install("pnpm", "global", words, packages=ops[1:])
            return Install("pnpm", "deps", words)
        return None
    if prog == "bundle" and args[:1] == ["install"]:
        return Install("bundle", "deps", words)
    if prog == "go":
        ops = [a for a in args if not a.startswith("-")]
        if ops[:2] == ["mod", "download"]:
            return Install("go", "deps", words)
        if ops[:1] == ["get"]:
            # `go get -d` without packages resolves the imports of the sources
            return Install("go", "deps", words, packages=ops[1:], needs_source=not ops[1:])
        if ops[:1] in (["build"], ["install"]):
            return Install("go", "build", words, needs_source=True)
        return None
    if prog == "cargo":
        ops = [a for a in args if not a.startswith("-")]
        if ops[:1] == ["fetch"] or ops[:2] == ["chef", "cook"]:
            return Install("cargo", "deps", words)
        if ops[:1] == ["build"]:
            return Install("cargo", "build", words, needs_source=True)
        if ops[:1] == ["install"]:
            local = "--path" in args
            return Install("cargo", "build" if local else "global", words, needs_source=local)
        return None
    if prog == "composer":
        ops = _operands(args, {"--working-dir", "-d"})
        if ops[:1] in (["install"], ["update"], ["require"]):
            return Install("composer", "deps", words, no_cache="--no-cache" in args)
        return None
    if prog in ("mvn", "mvnw", "mvnw.cmd"):
        goals = [a for a in args if not a.startswith("-")]
        if any(g.startswith("dependency:") for g in goals):
            return Install("maven", "deps", words)
        if any(g in ("package", "install", "verify", "compile", "test", "deploy")
               for g in goals):
            return Install("maven", "build", words, needs_source=True)
        return None
    if prog in ("gradle", "gradlew"):
        tasks = [a for a in args if not a.startswith("-")]
        if any(t in ("dependencies", "downloadDependencies") for t in tasks):
            return Install("gradle", "deps", words)
        if any(t in ("build", "assemble", "bootJar", "shadowJar", "installDist", "jar",
                     "bootWar", "war", "classes") for t in tasks):
            return Install("gradle", "build", words, needs_source=True)
        return None
    if prog in ("apt-get", "apt", "aptitude"):
        ops = _operands(args, {"-o", "-c", "-t", "--target-release", "-a"})
        if ops[:1] == ["install"]:
            pkgs = [p for p in ops[1:] if not p.startswith("./") and not p.endswith(".deb")]
            return Install("apt", "system", words, packages=pkgs)
        return None
    if prog == "apk":
        if "add" not in args:
            return None
        idx = args.index("add")
        rest = args[idx + 1 :]
        virtual = None
        for j, arg in enumerate(rest):
            if arg in ("--virtual", "-t") and j + 1 < len(rest):
                virtual = rest[j + 1]
            elif arg.startswith("--virtual="):
                virtual = arg.split("=", 1)[1]
            elif arg.startswith("-t") and len(arg) > 2 and not arg.startswith("--"):
                virtual = arg[2:]
        pkgs = _operands(rest, {"--virtual", "-t", "--repository", "-X", "--root", "-p",
                                "--arch", "--keys-dir", "--cache-dir"})
        no_cache = "--no-cache" in args
        return Install("apk", "system", words, packages=pkgs, no_cache=no_cache, virtual=virtual)
    if prog in ("yum", "dnf", "microdnf", "zypper", "tdnf"):
        ops = _operands(args, {"--setopt", "-c", "--enablerepo", "--disablerepo"})
        if ops[:1] == ["install"]:
            return Install("rpm", "system", words, packages=ops[1:])
        return None
    return None


def find_installs(script: str) -> list[Install]:
    """Every package-manager command of a RUN script, in order."""
    out: list[Install] = []
    for words in split_commands(script):
        found = classify(words)
        if found is not None:
            out.append(found)
    return out


ALL_PACKAGES = "*"  # in removed_packages(): everything installed was marked auto and purged


def removed_packages(script: str) -> set[str]:
    """Packages (and apk virtual names) removed again by the same script.

    The official-image idiom ``apt-mark auto '.*'`` followed by ``apt-get purge
    --auto-remove`` (or ``autoremove``) removes everything installed meanwhile; it is
    reported as ``ALL_PACKAGES``.
    """
    out: set[str] = set()
    if runs(script, "apt-mark", "auto") and (
        runs(script, "apt-get", "autoremove") or "--auto-remove" in script
    ):
        out.add(ALL_PACKAGES)
    for words in split_commands(script):
        prog = program(words[0]).lower()
        args = words[1:]
        if prog in ("apt-get", "apt", "aptitude", "yum", "dnf", "microdnf"):
            ops = _operands(args, {"-o"})
            if ops and ops[0] in ("purge", "remove", "autoremove", "erase"):
                out.update(ops[1:])
        elif prog == "apk" and "del" in args:
            out.update(a for a in args[args.index("del") + 1 :] if not a.startswith("-"))
    return out


def removes_path(script: str, path: str) -> bool:
    """True when the script runs ``rm`` (or ``find -delete``) on ``path`` or below it."""
    for words in split_commands(script):
        prog = program(words[0])
        if prog == "rm" or (prog == "find" and "-delete" in words):
            for arg in words[1:]:
                clean = arg.rstrip("*").rstrip("/")
                if clean and (clean == path.rstrip("/") or path.startswith(clean + "/")):
                    return True
    return False


def runs(script: str, *prefix: str) -> bool:
    """True when some command of the script starts with ``prefix`` (options ignored)."""
    for words in split_commands(script):
        ops = [program(words[0]), *[w for w in words[1:] if not w.startswith("-")]]
        if ops[: len(prefix)] == list(prefix):
            return True
    return False
