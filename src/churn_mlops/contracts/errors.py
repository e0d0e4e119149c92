"""Errors of the shared contracts and the one formatter of pydantic validation errors."""

from __future__ import annotations

from pydantic import ValidationError


class ContractError(ValueError):
    """A document or parameter breaks one of the shared contracts."""


class ProfileContractError(ContractError):
    """``reference_profile.json`` (or the data to profile) breaks the profile contract."""


def format_validation_error(
    exc: ValidationError, *, prefix: str = "", show_input: bool = False
) -> str:
    """One line per problem of a pydantic error, joined by ``"; "``.

    Each problem reads ``<prefix>.<key path>: <message>`` (``= <value>`` after the path when
    ``show_input`` and the value is a scalar; leave it off for anything that may hold a secret or
    a caller's data). A key that fails several members of a union is reported once.

    Args:
        exc: The error pydantic raised.
        prefix: The key the validated mapping sits under (``"training"``, say).
        show_input: Quote the offending value.
    """
    problems: list[str] = []
    for err in exc.errors(include_url=False, include_context=False):
        where = ".".join([prefix, *map(str, err["loc"])] if prefix else map(str, err["loc"]))
        where = where or "<root>"
        scalar = not isinstance(err.get("input"), dict | list | tuple)
        if show_input and scalar and err["type"] != "missing":
            problems.append(f"{where} = {err.get('input')!r}: {err['msg']}")
        else:
            problems.append(f"{where}: {err['msg']}")
    return "; ".join(dict.fromkeys(problems))


class ParityError(RuntimeError):
    """A second runtime of the model does not answer like the registered Pipeline.

    Raised when the served model (at load time) or an exported bundle's app (at export time)
    gives a probability further from ``Pipeline.predict_proba`` than the parity tolerance.
    """
