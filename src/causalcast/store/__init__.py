"""A versioned market data store: Delta Lake tables over Parquet, embedded at
``.causalcast/data`` (no server), the same code on object storage (``s3://...``).

One job per module: `location` (where tables live and who may write), `schema` (the columns
and their types), `revisions` (what a batch changes), `bars` (the bars table), `chains` (option
chain tables), `ingest` (files -> bars), `frames` (the ``store:`` data source), `sources`
(vendor adapters behind one Protocol).
"""

from causalcast.store.bars import BarStore, WriteResult
from causalcast.store.chains import ChainStore
from causalcast.store.frames import STORE_PREFIX, load_frames, load_source, parse_store_source
from causalcast.store.location import DEFAULT_LOCATION, StoreLocation
from causalcast.store.revisions import Revision, RevisionError

__all__ = [
    "DEFAULT_LOCATION",
    "STORE_PREFIX",
    "BarStore",
    "ChainStore",
    "Revision",
    "RevisionError",
    "StoreLocation",
    "WriteResult",
    "load_frames",
    "load_source",
    "parse_store_source",
]
