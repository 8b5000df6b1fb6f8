"""Use cases on transfer manifests (电子转移联单), split by reason to change:

- ``lifecycle``: create, ship, receive, reject (and the return), correct, import — the rules of each step;
- ``validation``: what a new manifest, a receipt and a step's times must satisfy (field-named problems);
- ``queries``: one manifest, lists, counts, the export, receivers and carriers; ``drafts``: unnumbered drafts;
- ``commands`` / ``results``: the typed commands (``NewManifest``, ``Shipment``, ``Receipt``, ``Rejection``,
  ``Correction``) and results (``Manifest`` …) the use cases take and return;
- ``facade``: the same use cases under their mapping names (pages, demo, tests).

Every query is in ``nofei.storage.manifests`` (the manifest repository).
"""

from nofei.storage.manifests import ManifestFilter

from .commands import Correction, NewLine, NewManifest, Receipt, ReceiptLine, Rejection, Shipment
from .common import CST, HAZ_STREAMS, actor_zh, as_aware, local_date, readable
from .drafts import delete_draft
from .facade import (
    carriers,
    correct_manifest,
    create_manifest,
    export_rows,
    get_draft,
    get_manifest,
    import_manifests,
    last_manifest,
    list_drafts,
    list_manifests,
    receive_manifest,
    receivers_for,
    reject_manifest,
    save_draft,
    ship_manifest,
    submit_draft,
)
from .lifecycle import next_number
from .queries import EXPORT_COLUMNS, receipt_late, status_counts
from .results import Manifest, ManifestPage

__all__ = [
    "CST", "EXPORT_COLUMNS", "HAZ_STREAMS", "Correction", "Manifest", "ManifestFilter", "ManifestPage", "NewLine",
    "NewManifest", "Receipt", "ReceiptLine", "Rejection", "Shipment", "actor_zh", "as_aware", "carriers",
    "correct_manifest", "create_manifest", "delete_draft", "export_rows", "get_draft", "get_manifest",
    "import_manifests", "last_manifest", "list_drafts", "list_manifests", "local_date", "next_number", "readable",
    "receipt_late", "receive_manifest", "receivers_for", "reject_manifest", "save_draft", "ship_manifest",
    "status_counts", "submit_draft",
]
