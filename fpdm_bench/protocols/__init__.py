"""Named evaluation protocols: every setting a PGPIS number depends on, as a declarative record.

``get_protocol(name)`` returns a :class:`Protocol`; ``PROTOCOLS`` lists them (did-you-mean on typos).
The records, each citing the official file it reproduces, are in :mod:`.records`; they are found,
like a third-party package's, through the ``fpdm_bench.protocols`` entry-point group
(pyproject.toml). ``register(protocol)`` adds one from code.
"""
from fpdm_bench.protocols.base import PROTOCOLS, RESIZE_LIBRARIES, Protocol, get_protocol, register

__all__ = ["PROTOCOLS", "RESIZE_LIBRARIES", "Protocol", "get_protocol", "register"]
