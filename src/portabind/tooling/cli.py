"""The `portabind` command line.

Errors a user can cause print one message (what, where, how to fix) and exit 2; no
traceback unless `--debug`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portabind.errors import PortabindError, UserError
from portabind.tooling import targets

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_USER_ERROR = 2


def _project_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=".", type=Path, help="project directory")
    parser.add_argument(
        "--components", type=Path, help="components directory (default: DIR/components)"
    )
    parser.add_argument("--app", default="app:app", help="the App, as module:attribute")
    parser.add_argument(
        "--app-id",
        help="the app's id: a component whose scopes do not name it is not loaded, as in Dapr; "
        "run's /v1.0/metadata reports it (default: DIR's name)",
    )
    # SUPPRESS: unset here, the value the main parser read before the command stays.
    parser.add_argument(
        "--strict",
        action="store_true",
        default=argparse.SUPPRESS,
        help="every warning is an error (exit 2), for CI",
    )


#: Where `portabind build` and `deploy` keep the target options given (`dest` of each flag).
_BUILD_OPTION = "build option "


def _build_options(parser: argparse.ArgumentParser) -> None:
    """Every target's build options as flags: unset unless given, the target's own
    declaration checks the value (`Target.chosen_options`)."""
    for name, declared in targets.build_options().items():
        choices = dict.fromkeys(choice for _, option in declared for choice in option.choices)
        parser.add_argument(
            f"--{name}",
            dest=f"{_BUILD_OPTION}{name}",
            metavar="{" + ",".join(choices) + "}",
            help="; ".join(
                f"{target} only: {option.help} (default {option.default})"
                for target, option in declared
            ),
        )


def _given_build_options(args: argparse.Namespace) -> dict[str, str]:
    return {
        name.removeprefix(_BUILD_OPTION): value
        for name, value in vars(args).items()
        if name.startswith(_BUILD_OPTION) and value is not None
    }


def _command(argv: Sequence[str]) -> str | None:
    """The command of a command line, read before parsing it: its first word that is not an
    option (the options before a command take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _parser(for_command: str | None = None) -> argparse.ArgumentParser:
    """The parser; for `build` and `deploy` (`for_command`), with every target's build
    options, which importing the targets gives (a moment no other command needs to spend)."""
    parser = argparse.ArgumentParser(
        prog="portabind",
        description="Dapr bindings for functions-as-a-service: one handler, every cloud.",
    )
    parser.add_argument("--version", action="version", version=f"portabind {_version()}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    parser.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="scaffold a new app from a template",
        epilog=f"templates:\n{_template_list(indent='  ')}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("dir", nargs="?", type=Path, help="the new app's directory")
    init.add_argument("--template", default="queue-worker", help="template name (below)")
    init.add_argument("--list", action="store_true", help="list the templates and exit")

    validate = commands.add_parser("validate", help="check components and app; list every error")
    _project_args(validate)

    bindings = commands.add_parser("bindings", help="the support matrix")
    bindings.add_argument("--markdown", action="store_true", help="print a Markdown table")

    build = commands.add_parser("build", help="write a deployable artifact for a target")
    _project_args(build)
    build.add_argument("--target", required=True, choices=targets.target_names())
    build.add_argument("--out", required=True, type=Path, help="output directory")

    deploy = commands.add_parser(
        "deploy", help="build, then deploy with the platform's own CLI (sam, az, gcloud)"
    )
    _project_args(deploy)
    deploy.add_argument("--target", required=True, choices=targets.deployable_names())
    deploy.add_argument(
        "--name", help="the deployment's name: stack, Function App (default: DIR's name)"
    )
    deploy.add_argument(
        "--out", type=Path, help="build directory (default: DIR/.portabind/build/TARGET)"
    )
    deploy.add_argument("--region", help="the cloud region (default: the target's)")
    deploy.add_argument("--project", help="the cloud project (gcp; default: gcloud's)")
    deploy.add_argument(
        "--bucket", help="bucket the CLI uploads the code to (aws; default: one SAM manages)"
    )
    deploy.add_argument(
        "--guided", action="store_true", help="let the CLI ask for its settings (sam --guided)"
    )
    deploy.add_argument(
        "--dry-run", action="store_true", help="build and print the commands; run none"
    )
    if for_command in ("build", "deploy"):
        _build_options(build if for_command == "build" else deploy)

    destroy = commands.add_parser("destroy", help="delete what `portabind deploy` created")
    destroy.add_argument("dir", nargs="?", default=".", type=Path, help="project directory")
    destroy.add_argument("--target", help="the deployment's target (needed when several)")
    destroy.add_argument("--name", help="the deployment's name (needed when several)")
    destroy.add_argument("--yes", action="store_true", help="do not ask before deleting")
    destroy.add_argument(
        "--dry-run", action="store_true", help="print the delete commands; run none"
    )

    run = commands.add_parser(
        "run", help="run locally: listeners, clients, Dapr HTTP and gRPC APIs"
    )
    _project_args(run)
    run.add_argument(
        "--resources-path", dest="components", type=Path, help="as --components (Dapr's name)"
    )
    run.add_argument(
        "--emulate",
        action="store_true",
        help="use the emulators of `portabind emulators up` when they run, else start "
        "embedded ones (no cloud account)",
    )
    _state_dir(run)
    run.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="NAME=DATA",
        help="after start-up, invoke output binding NAME with `create` and DATA (repeatable)",
    )
    run.add_argument("--exit-after", type=int, metavar="N", help="stop after N events were handled")
    _dapr_http_port(run)
    run.add_argument(
        "--dapr-grpc-port",
        type=int,
        help=f"Dapr gRPC API port (default: $DAPR_GRPC_PORT, else {DAPR_GRPC_PORT})",
    )
    run.add_argument(
        "--dapr-http-max-request-size",
        type=int,
        default=DAPR_MAX_REQUEST_MB,
        metavar="MB",
        help=f"largest request body the APIs accept, in MB ({DAPR_MAX_REQUEST_MB}, as daprd)",
    )
    run.add_argument(
        "--app-port",
        type=int,
        help="deliver input events over Dapr's app protocol to an app on this port (any "
        "language; DIR then needs no app.py) instead of calling the handlers in-process",
    )
    run.add_argument(
        "--app-protocol",
        choices=("http", "grpc"),
        default="http",
        help="the app's protocol: HTTP (POST /<route>) or gRPC (AppCallback) (http)",
    )
    run.add_argument(
        "--app-wait-seconds",
        type=float,
        metavar="S",
        help="how long to wait at start-up for the app to listen on --app-port (5)",
    )

    invoke = commands.add_parser("invoke", help="call an output binding")
    invoke.add_argument("name")
    invoke.add_argument("operation")
    invoke.add_argument("--data", help="payload (text; JSON is sent as is)")
    invoke.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE", help="request metadata"
    )
    invoke.add_argument("--dir", type=Path, default=Path("."), help="project directory")
    invoke.add_argument(
        "--components",
        type=Path,
        help="with no runner on the Dapr port: call the services this profile names",
    )
    invoke.add_argument(
        "--emulate",
        action="store_true",
        help="with no runner on the Dapr port: call the emulators of `portabind emulators up`, "
        "else embedded ones started for this call",
    )
    _dapr_http_port(invoke)
    _state_dir(invoke)
    _emulators_parser(commands)
    # Global options are accepted after the command too (`portabind run --debug`).
    for command in commands.choices.values():
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


_DEBUG_HELP = "show tracebacks"


def _state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where `portabind emulators up` records its emulators (DIR/.portabind/emulators)",
    )


def _emulators_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulators = commands.add_parser(
        "emulators",
        help="run the emulators of `run --emulate` on their own, so that what they hold "
        "outlives the runner: up, status, down",
    )
    actions = emulators.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, description in (
        ("up", "start the emulators the components need, in the background"),
        ("status", "show what runs where (exit 1 when nothing is up)"),
        ("down", "stop them"),
    ):
        parser = actions.add_parser(action, help=description)
        parser.add_argument("dir", nargs="?", default=".", type=Path, help="project directory")
        _state_dir(parser)
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
        if action == "up":
            parser.add_argument(
                "--components", type=Path, help="components directory (default: DIR/components)"
            )


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("portabind")


def _template_list(indent: str = "") -> str:
    """One template per line: its name, then its description."""
    from portabind.tooling.scaffold import description, templates

    available = sorted(templates().items())
    width = max(len(name) for name, _ in available)
    return "\n".join(f"{indent}{name:<{width}}  {description(t)}" for name, t in available)


#: Dapr's defaults, as daprd and the SDKs take them.
DAPR_HTTP_PORT = 3500
DAPR_GRPC_PORT = 50001
DAPR_MAX_REQUEST_MB = 4


def _dapr_http_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dapr-http-port",
        "--dapr-port",
        dest="dapr_http_port",
        type=int,
        help=f"Dapr HTTP API port (default: $DAPR_HTTP_PORT, else {DAPR_HTTP_PORT})",
    )


def _port(flag: int | None, variable: str, default: int) -> int:
    """A port from its flag, else the environment variable daprd and the SDKs read."""
    if flag is not None:
        return flag
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UserError(f"{variable}={value!r} is not a port", hint="set 1-65535, or unset it")
    return int(value)


def _pairs(items: Sequence[str], what: str, separator: str = "=") -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, found, value = item.partition(separator)
        if not found or not key:
            raise UserError(f"{what} {item!r} is not KEY{separator}VALUE")
        pairs.append((key, value))
    return pairs


def _cmd_validate(args: argparse.Namespace) -> int:
    from portabind.tooling.notices import report
    from portabind.tooling.project import check_project, load_project

    project = load_project(args.dir, args.components, args.app, app_id=args.app_id)
    report(check_project(project, resolve_secrets=True, platform_secrets=True), strict=args.strict)
    names = ", ".join(f"{c.name} ({c.type})" for c in project.components.bindings())
    print(f"ok: {len(project.app.handlers)} handler(s); components: {names}")
    return 0


def _cmd_bindings(args: argparse.Namespace) -> int:
    from portabind.tooling.matrix import render, support_matrix

    print(render(support_matrix(), markdown=args.markdown))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from portabind.tooling.notices import report
    from portabind.tooling.project import check_project, load_project

    target = targets.target(args.target)
    options = target.chosen_options(_given_build_options(args))
    project = load_project(args.dir, args.components, args.app, app_id=args.app_id)
    report(
        check_project(project, resolve_secrets=False, build_target=args.target),
        strict=args.strict,
    )
    # Vendoring and compiling take a moment: say what is happening before it happens.
    print(
        f"building {args.target}: the app, its components and the portabind modules they use "
        f"into {args.out}",
        file=sys.stderr,
        flush=True,
    )
    written = target.build(project, args.out, **options)
    print(f"built {args.target} app in {args.out}:")
    for path in written:
        print(f"  {path}")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from portabind.tooling.deploy import default_name, deploy
    from portabind.tooling.deployment import DeployOptions
    from portabind.tooling.notices import report
    from portabind.tooling.project import check_project, load_project

    project = load_project(args.dir, args.components, args.app, app_id=args.app_id)
    report(
        check_project(project, resolve_secrets=False, build_target=args.target),
        strict=args.strict,
    )
    options = DeployOptions(
        name=args.name or default_name(args.dir),
        region=args.region,
        project=args.project,
        bucket=args.bucket,
        guided=args.guided,
    )
    deploy(
        project,
        args.target,
        options,
        out=args.out,
        dry_run=args.dry_run,
        build_options=_given_build_options(args),
    )
    return 0


def _ask(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # no terminal to answer from: as good as "no"
        print()
        return False
    return answer.strip().lower() in {"y", "yes"}


def _cmd_destroy(args: argparse.Namespace) -> int:
    from portabind.tooling.deploy import destroy

    confirm = (lambda _question: True) if args.yes else _ask
    done = destroy(args.dir, args.target, args.name, confirm=confirm, dry_run=args.dry_run)
    return 0 if done else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from portabind.tooling.project import load_project

    runner = targets.adapter("local", "runner")
    http_port = _port(args.dapr_http_port, "DAPR_HTTP_PORT", DAPR_HTTP_PORT)
    grpc_port = _port(args.dapr_grpc_port, "DAPR_GRPC_PORT", DAPR_GRPC_PORT)
    if args.dapr_http_max_request_size <= 0:
        raise UserError("--dapr-http-max-request-size must be a positive number of MB")
    if args.app_wait_seconds is not None and args.app_wait_seconds < 0:
        raise UserError("--app-wait-seconds must be 0 or more")
    project = load_project(
        args.dir,
        args.components,
        args.app,
        app_optional=args.app_port is not None,
        app_id=args.app_id,
    )
    options = runner.RunOptions(
        emulate=args.emulate,
        sends=[(name, data.encode()) for name, data in _pairs(args.send, "--send")],
        exit_after=args.exit_after,
        dapr_port=http_port,
        app_port=args.app_port,
        app_protocol=args.app_protocol,
        app_wait=runner.APP_WAIT if args.app_wait_seconds is None else args.app_wait_seconds,
        app_id=args.app_id,
        strict=args.strict,
        dapr_grpc_port=grpc_port,
        max_request_bytes=args.dapr_http_max_request_size << 20,
        api_token=os.environ.get("DAPR_API_TOKEN") or None,
        app_api_token=os.environ.get("APP_API_TOKEN") or None,
        debug=args.debug,
        emulators_state=args.state_dir,
    )
    code: int = runner.run(project, options)
    return code


def _cmd_invoke(args: argparse.Namespace) -> int:
    response = targets.adapter("local", "invoke").invoke(
        args.name,
        args.operation,
        data=(args.data or "").encode(),
        metadata=dict(_pairs(args.metadata, "--metadata")),
        dapr_port=_port(args.dapr_http_port, "DAPR_HTTP_PORT", DAPR_HTTP_PORT),
        api_token=os.environ.get("DAPR_API_TOKEN") or None,
        directory=args.dir,
        components=args.components,
        emulate=args.emulate,
        in_process=args.components is not None,
        emulators_state=args.state_dir,
    )
    for key, value in response.metadata.items():
        print(f"{key}: {value}", file=sys.stderr)
    if response.data is not None:
        sys.stdout.buffer.write(response.data)
        if response.data and not response.data.endswith(b"\n"):
            sys.stdout.write("\n")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from portabind.tooling.scaffold import scaffold

    if args.list:
        print(_template_list())
        return 0
    if args.dir is None:
        raise UserError("init needs the new app's directory", hint="portabind init myapp")
    written = scaffold(args.template, args.dir)
    print(f"created {args.dir} from template {args.template!r} ({len(written)} files)")
    print(f"next: cd {args.dir}; read README.md; pytest; portabind build . --target aws ...")
    return 0


def _cmd_emulators(args: argparse.Namespace) -> int:
    from portabind.tooling.project import components_dir

    background = targets.adapter("local", "background")
    state_dir = args.state_dir or background.default_state_dir(args.dir)
    code: int
    if args.action == "up":
        code = background.up(components_dir(args.dir, args.components), state_dir)
    else:
        code = getattr(background, args.action)(state_dir)
    return code


COMMANDS: dict[str, Any] = {
    "init": _cmd_init,
    "validate": _cmd_validate,
    "bindings": _cmd_bindings,
    "build": _cmd_build,
    "deploy": _cmd_deploy,
    "destroy": _cmd_destroy,
    "run": _cmd_run,
    "invoke": _cmd_invoke,
    "emulators": _cmd_emulators,
}


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command(words)).parse_args(words)
    try:
        code: int = COMMANDS[args.command](args)
        return code
    except UserError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error.render()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModuleNotFoundError as error:
        from portabind.tooling.extras import missing_package

        if args.debug:
            traceback.print_exc()
        print(f"error: {missing_package(error).render()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except PortabindError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`portabind bindings | head`): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
