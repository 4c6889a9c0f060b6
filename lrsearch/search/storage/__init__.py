"""Where studies live: the default storage (a SQLite file under ``studies/``, a journal for a
``.log`` path, an RDB URL with heartbeats), journal safety and the liveness of a trial's process."""

from lrsearch.search.storage._defaults import GRACE_PERIOD
from lrsearch.search.storage._defaults import HEARTBEAT_INTERVAL
from lrsearch.search.storage._defaults import check_exists
from lrsearch.search.storage._defaults import check_file_name
from lrsearch.search.storage._defaults import file_stem
from lrsearch.search.storage._defaults import is_sqlite
from lrsearch.search.storage._defaults import masked
from lrsearch.search.storage._defaults import resolve_storage
from lrsearch.search.storage._defaults import single_process
from lrsearch.search.storage._defaults import sqlite_path
from lrsearch.search.storage._defaults import storage_file
from lrsearch.search.storage._liveness import is_stale
from lrsearch.search.storage._liveness import owner
# for the rest of the search, not the public API
from lrsearch.search.storage._attrs import deferred
from lrsearch.search.storage._attrs import flush
from lrsearch.search.storage._attrs import set_user_attrs


__all__ = ["GRACE_PERIOD", "HEARTBEAT_INTERVAL", "check_exists", "check_file_name", "file_stem", "is_sqlite",
           "masked", "owner", "is_stale", "resolve_storage", "single_process", "sqlite_path", "storage_file"]
