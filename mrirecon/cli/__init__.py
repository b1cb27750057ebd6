"""The ``mrirecon`` command: one subcommand per DVC stage, plus ``run`` for the whole DAG and
``reconstruct`` (a trained model on one's own scan).

Stage commands are what ``dvc.yaml`` runs; each runs that stage's Prefect flow, so every
stage run shows in Prefect whichever way it was started.
"""

# importing a module registers its commands; stage commands are listed first in --help
from mrirecon.cli import stages  # noqa: F401

# isort: split
from mrirecon.cli import daily, models  # noqa: F401
from mrirecon.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
