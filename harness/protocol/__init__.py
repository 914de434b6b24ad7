"""Sans-I/O protocol rules: data and pure functions, no aiohttp import (servers are thin adapters)."""
