"""The event backbone: outbox → relay → NATS JetStream → inbox consumers.

``envelope`` (naming, the envelope), ``catalogue`` (subjects and payloads), ``streams``
(provisioning, connections), ``outbox`` (``record_event``), ``relay``, ``consumer``,
``dead_letters``, ``rpc`` (request/reply), ``failures`` (transient or permanent) and ``health``
(the database gate that parks every part during an outage). A service worker runs, after ``ensure_streams``:
one ``Relay`` for its outbox, its ``Consumer``s, and ``shared.scheduler.JobRunner``.
"""
