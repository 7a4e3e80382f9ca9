"""The strict Dockerfile reader (grader/submission/dockerfile.py), seen through the build
policy it feeds (dockerpolicy.py; the policy's own tests: test_dockerpolicy.py).

Each class of file the reader refuses, named; the honest forms it must keep accepting (the
shapes of uv's Docker guide; every Dockerfile of the repository: test_dockerpolicy.py); linear
time. That the engines read the accepted files the same way is shown by
tests/grader/test_dockerfile_differential.py.
"""

from __future__ import annotations

import time

import pytest

from grader.submission import dockerfile, dockerpolicy
from grader.submission.dockerfile import parse
from tests.grader_helpers import DOCKERFILE
from tests.support import ROOT

BASE = "FROM python:3.13-slim-bookworm\n"
ESCAPE = "--mount=type=cache,id=../../../..,target=/host"


def problems(text: str) -> list[str]:
    return dockerpolicy.policy_problems(dockerfile.parse(text))


# -- the honest forms ------------------------------------------------------------------------

# The shapes of uv's Docker guide and its example project (written here, not copied): an image
# with uv inside, relative bind-mount targets, `COPY . /app`, an emptied ENTRYPOINT, a second
# stage copying the environment with --chown, a continuation line starting with `&&`.
UV_GUIDE = {
    "uv image, mounts": """\
        # an image with uv already in it
        FROM ghcr.io/astral-sh/uv:python3.12-bookworm-slim
        RUN groupadd --system --gid 999 nonroot \\
         && useradd --system --gid 999 --uid 999 --create-home nonroot
        WORKDIR /app
        ENV UV_COMPILE_BYTECODE=1
        ENV UV_LINK_MODE=copy
        ENV UV_NO_DEV=1
        ENV UV_TOOL_BIN_DIR=/usr/local/bin
        RUN --mount=type=cache,target=/root/.cache/uv \\
            --mount=type=bind,source=uv.lock,target=uv.lock \\
            --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\
            uv sync --locked --no-install-project
        COPY . /app
        RUN --mount=type=cache,target=/root/.cache/uv \\
            uv sync --locked
        ENV PATH="/app/.venv/bin:$PATH"
        ENTRYPOINT []
        USER nonroot
        CMD ["uv", "run", "fastapi", "dev", "--host", "0.0.0.0", "src/app"]
        """,
    "two stages": """\
        FROM ghcr.io/astral-sh/uv:python3.12-bookworm-slim AS builder
        ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
        ENV UV_PYTHON_DOWNLOADS=0
        WORKDIR /app
        RUN --mount=type=cache,target=/root/.cache/uv \\
            --mount=type=bind,source=uv.lock,target=uv.lock \\
            --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\
            uv sync --locked --no-install-project
        COPY . /app
        RUN --mount=type=cache,target=/root/.cache/uv \\
            uv sync --locked


        FROM python:3.12-slim-bookworm
        RUN groupadd --system --gid 999 nonroot \\
         && useradd --system --gid 999 --uid 999 --create-home nonroot
        COPY --from=builder --chown=nonroot:nonroot /app /app
        ENV PATH="/app/.venv/bin:$PATH"
        USER nonroot
        WORKDIR /app
        CMD ["fastapi", "run", "--host", "0.0.0.0", "src/app"]
        """,
    "uv copied in, pinned by digest": f"""\
        # syntax=docker/dockerfile:1
        {BASE.strip()}
        COPY --from=ghcr.io/astral-sh/uv@sha256:{"0" * 64} /uv /uvx /bin/
        COPY pyproject.toml uv.lock ./
        RUN uv sync --locked --compile-bytecode
        HEALTHCHECK --interval=30s --timeout=3s CMD python -c "print('ok')"
        EXPOSE 9696/tcp
        """,
}


@pytest.mark.parametrize("name", UV_GUIDE)
def test_the_shapes_of_uvs_docker_guide_are_accepted(name: str) -> None:
    text = "\n".join(line.removeprefix(" " * 8) for line in UV_GUIDE[name].splitlines())
    assert problems(text) == []
    assert dockerpolicy.dependency_steps(text) is not None


def test_the_course_forms_read_as_the_engines_join_them() -> None:
    df = dockerfile.parse((ROOT / "solutions" / "Dockerfile").read_text())
    run = df.all("RUN")[0]
    options, rest = run.options()
    assert options == [
        "--mount=type=cache,target=/root/.cache/uv",
        "--mount=type=bind,source=uv.lock,target=/app/uv.lock",
        "--mount=type=bind,source=pyproject.toml,target=/app/pyproject.toml",
    ]
    assert rest == "uv sync --locked --no-install-project --no-dev"
    assert (run.line, run.end) == (16, 19)
    # a continuation joins without a separator, as buildah and BuildKit join it
    joined = dockerfile.parse(BASE + "RUN --mo\\\nunt=type=cache,i\\\nd=x,target=/c ls\n")
    assert joined.instructions[1].options()[0] == ["--mount=type=cache,id=x,target=/c"]


def test_crlf_bom_and_tabs_read_as_the_engines_read_them() -> None:
    course = (ROOT / "06-docker" / "Dockerfile").read_text()
    plain = dockerfile.parse(course)
    for variant in ("\ufeff" + course, course.replace("\n", "\r\n"), course.replace("    ", "\t")):
        df = dockerfile.parse(variant)
        assert df.problems == ()
        assert [i.keyword for i in df.instructions] == [i.keyword for i in plain.instructions]
        assert [i.options()[0] for i in df.instructions] == [
            i.options()[0] for i in plain.instructions
        ]
    crlf = dockerpolicy.dependency_steps(course.replace("\n", "\r\n"))
    assert crlf == dockerpolicy.dependency_steps(course)


# -- what the reader refuses, class by class -------------------------------------------------
REFUSED = {
    # the two hiding places found in the engine's parser
    "empty line in a continuation": (BASE + f"RUN \\\n\n{ESCAPE} ls /host\n", "an empty line"),
    "comment in a continuation": (BASE + f"RUN \\\n  # hm\n{ESCAPE} ls\n", "a comment line"),
    "escape directive": (f"# escape=`\n{BASE}RUN `\n{ESCAPE} ls\n", "parser directive"),
    # other directives, and a frontend that is not the standard one
    "check directive": (f"# check=skip=all\n{BASE}", "parser directive"),
    "directive after a comment": (f"# hello\n#escape=\\\n{BASE}", "parser directive"),
    "directive later on": (f"{BASE}# ESCAPE = `\nRUN ls\n", "parser directive"),
    "other frontend": (f"# syntax=example.com/frontend:1\n{BASE}", "parser directive"),
    "labs frontend": (f"# syntax=docker/dockerfile:1-labs\n{BASE}", "parser directive"),
    "syntax not first": (f"# the image\n# syntax=docker/dockerfile:1\n{BASE}", "directive"),
    "slash comment syntax": (f"//syntax=example.com/frontend\n{BASE}", "not a Dockerfile"),
    # continuations in odd places
    "continuation into nothing": (BASE + "RUN ls \\", "continuing into nothing"),
    "double backslash": (BASE + "RUN echo a\\\\\nRUN ls\n", "ends in `\\\\`"),
    # characters the engines and the reader may split differently
    "NUL byte": (BASE + "RUN echo a\x00b\n", "control character"),
    "lone carriage return": (BASE + "RUN ls \\\r\r\n" + ESCAPE + " ls\n", "control character"),
    "vertical tab": (BASE + "RUN\x0b" + ESCAPE + " ls\n", "control character"),
    "no-break space": (BASE + "RUN\u00a0" + ESCAPE + " ls\n", "non-ASCII"),
    "look-alike letter": (BASE + "RUN --mоunt=type=cache,target=/c ls\n", "non-ASCII"),
    "BOM later in the file": (BASE + "\ufeffRUN ls\n", "non-ASCII"),
    # instructions
    "unknown instruction": (BASE + "RUNX ls\n", "not a Dockerfile instruction"),
    "ONBUILD": (BASE + f"ONBUILD RUN {ESCAPE} ls\n", "ONBUILD"),
    "heredoc": (BASE + "RUN <<EOF\necho hi\nEOF\n", "heredoc"),
    "heredoc in COPY": (BASE + "COPY <<EOF /x\nhi\nEOF\n", "heredoc"),
    # options the reader did not place and check itself
    "quoted option": (BASE + 'RUN --mount="type=cache,id=../..,target=/c" ls\n', "no quotes"),
    "escaped option": (BASE + "RUN --mo\\unt=type=cache,target=/c ls\n", "no quotes"),
    "variable in an option": (BASE + "ARG M\nRUN --mount=$M ls\n", "`$` variables"),
    "braced variable": (BASE + "FROM --platform=${P} python:3.13\n", "`$` variables"),
    "bare --": (BASE + f"RUN -- {ESCAPE} ls\n", "no quotes"),
    "upper-case option": (BASE + "RUN --MOUNT=type=cache,target=/c ls\n", "no quotes"),
    "unknown option": (BASE + "RUN --device=/dev/kvm ls\n", "not an option"),
    "option of another instruction": (BASE + "COPY --mount=type=cache,target=/c a b\n", "not an"),
    "option on CMD": (BASE + "CMD --host 0.0.0.0\n", "not an option"),
    "mount after the command": (BASE + f"RUN ls {ESCAPE}\n", "outside the options"),
    "mount in exec form": (BASE + f'RUN ["{ESCAPE}", "ls"]\n', "outside the options"),
    "id= in a variable": (BASE + "ARG M=type=cache,id=../..\n", "`id=` outside"),
    "from= in a variable": (BASE + "ENV X=from=base\n", "`from=` outside"),
    # the policy itself (the mounts and downloads the course does not use)
    "cache id": (BASE + f"RUN {ESCAPE} ls\n", "leave out `id=`"),
    "upper-case cache id": (BASE + "RUN --mount=type=cache,ID=x,target=/c ls\n", "leave out"),
    "bind from a stage": (BASE + "RUN --mount=type=bind,from=base,target=/x ls\n", "from="),
    "writable bind": (BASE + "RUN --mount=type=bind,target=/c,rw touch /c/x\n", "`rw`"),
    "bind ro=false": (BASE + "RUN --mount=type=bind,target=/c,ro=false ls\n", "ro=false"),
    "type given twice": (BASE + "RUN --mount=type=cache,type=bind,target=/c ls\n", "twice"),
    "secret mount": (BASE + "RUN --mount=type=secret,id=x ls\n", "type=secret"),
    "source outside": (BASE + "RUN --mount=source=../x,target=/x ls\n", "relative"),
    "network": (BASE + "RUN --network=host ls\n", "--network=host"),
    "ADD of a URL in exec form": (BASE + 'ADD ["https://example.com/x", "/x"]\n', "ADD <URL>"),
    "ADD of a git remote": (BASE + "ADD git@example.com:a/b.git /b\n", "ADD <URL>"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_each_refusal_names_its_line_and_what_to_change(name: str) -> None:
    text, words = REFUSED[name]
    found = problems(text)
    assert any(words in p for p in found), found
    assert all(p.startswith(("line ", "...")) for p in found), found
    assert dockerpolicy.dependency_steps(text + "COPY uv.lock .\nRUN uv sync --locked\n") is None


def test_refusals_are_listed_once_and_capped() -> None:
    found = problems(BASE + 'RUN --mount="type=cache,id=x" ls\n')
    assert len(found) == 1, found  # the reader's, not the policy's reading of a misread option
    many = problems(BASE + "RUN \\\n" + "\n" * 1000 + "ls\n")
    assert len(many) == dockerfile.SHOWN + 1 and many[-1].startswith("... and 988 more")


def test_a_refused_file_is_still_read_for_the_static_checks() -> None:
    """A mistake is charged at the check that names it: the static checks still see the
    instructions (read as the engines would) of a file 6.9 refuses to build."""
    text = (
        (ROOT / "solutions" / "Dockerfile")
        .read_text()
        .replace(
            "--mount=type=cache,target=/root/.cache/uv \\\n", "--mount=type=cache,target=/c \\\n\n"
        )
    )
    df = dockerfile.parse(text)
    assert df.problems and df.user() == "app" and df.served_port() == 9696
    assert (
        df.all("RUN")[0].options()[0][1] == "--mount=type=bind,source=uv.lock,target=/app/uv.lock"
    )


# -- linear time -----------------------------------------------------------------------------
HUGE = {
    "options": "RUN " + "--mount=type=cache,target=/c " * 2_000 + "ls\n",
    "continuations": "RUN ls \\\n" * 6_000 + "ls\n",
    "empty continuation lines": "RUN ls \\\n" + "\n" * 60_000 + "ls\n",
    "heredoc markers": "RUN " + "<<" * 30_000 + "\n",
    "unplaced words": "RUN " + "id=from=--mount " * 4_000 + "\n",
    "one long line": "RUN " + "\\" * 60_000 + "x\n",
    "directives": "# escape=\\\n" * 6_000,
}


@pytest.mark.parametrize("name", HUGE)
def test_huge_inputs_are_read_in_linear_time(name: str) -> None:
    """64 kB (the grader's cap on a Dockerfile) of each pattern, and 4 times as much: 4 times
    the time, not 16 (the best of two tries each, the machine may be busy)."""
    seconds = []
    for copies in (1, 4):
        text = BASE + HUGE[name] * copies
        tries = []
        for _ in range(2):
            started = time.perf_counter()
            problems(text)
            dockerpolicy.dependency_steps(text)
            tries.append(time.perf_counter() - started)
        seconds.append(min(tries))
    print(
        f"\n{name}: {len(BASE + HUGE[name]) // 1024} kB {seconds[0]:.3f} s, x4 {seconds[1]:.3f} s"
    )
    assert seconds[1] < 5
    assert seconds[1] < 8 * seconds[0] + 0.2


def test_dockerfile_reader() -> None:
    df = parse(DOCKERFILE)
    assert df.base_images() == ["python:3.13-slim-bookworm"]
    assert df.host() == "0.0.0.0"
    assert df.served_port() == 9696
    assert df.exposed_ports() == [9696]
    assert df.user() == "app"
    shell = parse("FROM python:3.13\nCMD uvicorn predict:app --host=127.0.0.1 --port=8000\n")
    assert shell.host() == "127.0.0.1" and shell.served_port() == 8000 and shell.user() is None
