"""The errors eqr-solve raises for problems the user can fix, each with a one-line message.

The command line maps every ``EqrError`` to exit code 2 and the line ``error: <message>``;
anything else that escapes a command is a bug (exit code 3, see ``eqr_solve.cli``).
``InputError`` and ``RecipeError`` are also ``ValueError``s, so older callers that catch
``ValueError`` keep working.
"""

from __future__ import annotations


class EqrError(Exception):
    """A problem the user can fix; ``str(error)`` is the one-line message for them."""


class InputError(EqrError, ValueError):
    """Bad puzzle text, data set or option value (also ``eqr_solve.tasks.InputError``)."""


class WeightsError(EqrError):
    """A model file that cannot be used (also ``eqr_solve.weights.WeightsError``)."""


class RecipeError(EqrError, ValueError):
    """A training recipe, a ``--set`` override or a ``--resume`` that cannot be used."""


class ResourceError(EqrError):
    """The machine cannot do what was asked: no CUDA, a size or memory limit, an output that
    cannot be written."""
