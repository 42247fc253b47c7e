"""Options shared by several commands, declared once, and the helper that turns parsed options into configs.

Choices are built from the library's enums, so a new value appears in ``--help`` without a CLI edit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

from xlingual.choices import AUTO_INDEX, Device, EmbedDtype, ExportFormat, IndexType, InitMethod, MineMode, Quantization
from xlingual.config import DataConfig, DistillConfig

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")

#: Where an option's value came from when the user typed it (on the command line or in the environment).
TYPED_SOURCES = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
#: The options that make a :class:`DataConfig` (how parallel pairs are read).
DATA_OPTIONS = ("detokenize", "en_key", "ja_key")


def choice(*groups: Iterable[str]) -> click.Choice:
    """A click choice of the values of ``groups`` (enums or tuples), in order: ``choice(["auto"], IndexType)``."""
    return click.Choice([str(value) for group in groups for value in group])


INIT_METHODS = choice(InitMethod)
DEVICES = choice(Device)
MINE_MODES = choice(MineMode)
INDEX_TYPES = choice([AUTO_INDEX], IndexType)
EMBED_DTYPES = choice(EmbedDtype)
EXPORT_FORMATS = choice(ExportFormat)
QUANTIZE = choice(Quantization)


def stack(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Apply several option decorators as one, in the order listed (the first shows first in ``--help``)."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def build(cls: type[C], params: Mapping[str, Any], **overrides: Any) -> C:
    """Make the config ``cls`` from the parsed options named like its fields, then ``overrides``.

    Example: ``build(EmbedConfig, {"dtype": "int8", "quiet": True}, show_progress=False)`` → dtype int8.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {name: value for name, value in params.items() if name in names}
    return cls(**{**values, **overrides})


def typed_options(ctx: click.Context) -> set[str]:
    """The names of the options the user gave (command line or environment), not left at their defaults."""
    return {name for name in ctx.params if ctx.get_parameter_source(name) in TYPED_SOURCES}


def json_option(help: str = "Print the result as one JSON object.") -> Callable[[F], F]:
    """``--json``: machine-readable output on stdout (parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def quiet_option(help: str = "No progress messages.") -> Callable[[F], F]:
    """``-q/--quiet``: no progress on stderr."""
    return click.option("-q", "--quiet", is_flag=True, help=help)


def device_option(default: str | None = None) -> Callable[[F], F]:
    """``--device``: the torch device, free text (``None``: automatic)."""
    return click.option("--device", default=default, help="Torch device (cpu, cuda, mps); default: automatic.")


def distill_device_option() -> Callable[[F], F]:
    """``--device`` of ``distill``: auto, cpu or cuda (it also decides how processes share GPUs)."""
    return click.option("--device", type=DEVICES, default=DistillConfig.device, show_default=True)


def model_option(help: str, *decls: str, **kwargs: Any) -> Callable[[F], F]:
    """``-m/--model``: a model spec or folder."""
    return click.option("-m", "--model", *decls, help=help, **kwargs)


def teacher_option(help: str, **kwargs: Any) -> Callable[[F], F]:
    """``-t/--teacher``: the English teacher's model spec."""
    return click.option("-t", "--teacher", help=help, **kwargs)


def student_option(help: str, **kwargs: Any) -> Callable[[F], F]:
    """``-s/--student``: the multilingual student's model spec."""
    return click.option("-s", "--student", help=help, **kwargs)


def query_model_option(help: str) -> Callable[[F], F]:
    """``-Q/--query-model``: embed queries with another model of the index's vector space."""
    return click.option("-Q", "--query-model", help=help)


def data_options(detokenize_help: str) -> Callable[[F], F]:
    """``--detokenize``, ``--en-key``, ``--ja-key``: how parallel pairs are read (see :func:`data_config`)."""
    return stack(
        click.option("--detokenize", is_flag=True, help=detokenize_help),
        click.option("--en-key", default=DataConfig.en_key, show_default=True, help="English column / JSON key."),
        click.option("--ja-key", default=DataConfig.ja_key, show_default=True, help="Japanese column / JSON key."),
    )


def data_config(params: Mapping[str, Any]) -> DataConfig:
    """The :class:`DataConfig` of the options added by :func:`data_options`."""
    return DataConfig(**{name: params[name] for name in DATA_OPTIONS})
