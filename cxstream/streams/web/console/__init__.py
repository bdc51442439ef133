"""The support console: server-rendered pages at /console, worked with plain HTML forms,
enhanced by one small script (live inbox by server-sent events, times in the browser's
zone). No build step, no CDN.

Pages read and act through the same calls as the API (web.worker_api), as the
signed-in user, so they see and do exactly what that user may (and reach any worker's
partitions). Signing in with a user's token gives a signed session in an HttpOnly,
SameSite=Strict cookie (``Secure`` when CXSTREAM_PUBLIC_URL is https), never the token
itself; forms also carry a value derived from the session, checked on every POST. Failed
sign-ins are limited per client address (CXSTREAM_SIGN_IN_ATTEMPTS_PER_MINUTE; the
``limits`` library's moving window). The pages are in pages.py, how they are made in
rendering.py, the live inbox in live.py.
"""
