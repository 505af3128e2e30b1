"""Spiders the add-on adds to every project (it appends this package to ``SPIDER_MODULES``):
``apigw_enrich`` (:mod:`.enrich`)."""
