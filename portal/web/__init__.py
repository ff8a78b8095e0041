"""The shared web layer: middleware, htmx helpers, rendering, i18n, rate limits."""
