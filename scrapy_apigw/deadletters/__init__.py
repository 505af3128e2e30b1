"""Dead letters: every item that ends ``failed`` or ``partial`` leaves a record, replayed by the
``apigw_enrich`` spider on a schedule (``docs/operations.md``, "Dead letters and replay").

- :mod:`.record`: the record (pure data) and the track key;
- :mod:`.schedule`: which records are due (pure logic);
- :mod:`.store_redis`: a Redis stream, when ``APIGW_REDIS_URL`` is set;
- :mod:`.store_file`: an SQLite file under ``.scrapy/``, else, and the fallback when Redis fails;
- :mod:`.queue`: what the pipeline calls: write with fallback, remove, list what is due;
- :mod:`.config`: the ``APIGW_DEADLETTER_*`` settings.

Import-safe: nothing here imports txredisapi or ``twisted.internet.reactor`` at module level.
"""
