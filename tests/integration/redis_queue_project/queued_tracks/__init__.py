"""A Scrapy project whose crawl queue is in Redis (scrapy-redis), enriched by scrapy-apigw."""
