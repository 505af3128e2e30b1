"""Settings of a crawl spread over several ``scrapy crawl`` processes with scrapy-redis.

The README's scrapy-redis section: scrapy-redis' scheduler and dupefilter keep one crawl queue
and one set of seen requests in Redis for every process; scrapy-apigw's cache and shared limits
use the same Redis, so all the processes spend one quota per provider.
"""

import os

BOT_NAME = "queued_tracks"
SPIDER_MODULES = ["queued_tracks.spiders"]

ADDONS = {"scrapy_apigw.Addon": 500}

# One Redis for both (a URL with a password is a credential: from the environment).
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
APIGW_REDIS_URL = REDIS_URL

# scrapy-redis: the crawl queue and the dupefilter in Redis.
SCHEDULER = "scrapy_redis.scheduler.Scheduler"
DUPEFILTER_CLASS = "scrapy_redis.dupefilter.RFPDupeFilter"
# Keep the queue and the seen requests when a process closes: without it the first process to
# finish deletes both, under the others still crawling.
SCHEDULER_PERSIST = True
# A RedisSpider waits for more start URLs while idle; close after 1 s without any.
MAX_IDLE_TIME_BEFORE_CLOSE = 1

APIGW_SANDBOX = True
APIGW_SANDBOX_SPEED = 10
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
