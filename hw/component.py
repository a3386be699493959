"""The base of every block of the core: a ``wiring.Component`` built for one ``CoreConfig``."""
from __future__ import annotations

from amaranth.lib import wiring

from .config import CoreConfig

__all__ = ["CoreComponent"]


class CoreComponent(wiring.Component):
    """A component whose ports and datapath follow a :class:`CoreConfig`.

    Subclasses call :meth:`_use_config` first in ``__init__`` (before deriving widths from
    the config), then ``super().__init__(signature)``.
    """

    def _use_config(self, config) -> CoreConfig:
        """Validate and keep ``config``; returns it."""
        if not isinstance(config, CoreConfig):
            raise ValueError(f"{type(self).__name__}: config must be a CoreConfig, "
                             f"got {type(config).__name__}")
        self._config = config
        return config

    @property
    def config(self) -> CoreConfig:
        return self._config
