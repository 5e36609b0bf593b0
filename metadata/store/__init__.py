"""Graph stores behind one contract (base.Store): embedded DuckDB and Elasticsearch."""
from __future__ import annotations

from ground.settings import Settings
from metadata.store.base import Store


def open_store(settings: Settings) -> Store:
    """The store the settings select."""
    if settings.store == "elasticsearch":
        from metadata.store.elastic import ElasticStore
        return ElasticStore(settings.es_url, settings.es_index_prefix, settings.es_shards,
                            None if settings.es_replicas < 0 else settings.es_replicas, settings.es_ca_certs)
    from metadata.store.embedded import EmbeddedStore
    return EmbeddedStore(settings.database_path, columnar=bool(settings.columnar_facets))
