"""The `vitrine` command."""

from __future__ import annotations

import argparse
import logging
import sys


def cmd_serve(args) -> int:
    import uvicorn

    from api.main import create_app
    from api.settings import ApiSettings
    from catalogue.services import Services
    from embedding.encoder import ModelLoadError

    settings = ApiSettings()
    try:
        services = Services.build()
    except ModelLoadError as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, services)
    app.state.owns_services = True
    print(f"Vitrine on http://{args.host or settings.host}:{args.port or settings.port} "
          f"(API docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port,
                log_level="info")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    parser = argparse.ArgumentParser(prog="vitrine", description="Fashion product search.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the local profile: API, ingest, embedded store")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
