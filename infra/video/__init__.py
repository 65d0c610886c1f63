"""Video infrastructure: decoding, analysis and media handling.

The analysis core (import the module you need; nothing is imported here, so that light users
such as the upload receiver do not pull in torch):

- ``probe``: what a file is, and the domain's refusals (not a video, corrupt, too long);
- ``decoder``: streaming decode in a background thread into tiny analysis frames, sampled grey
  frames and audio levels (``audio``);
- ``scenes``, ``samples``, ``highlights``: cuts and fades, motion and sharpness, per-second
  highlight features;
- ``thumbnails``: choosing and rendering the thumbnail;
- ``analyzer``: ``VideoAnalyzer`` (the whole pipeline), the ``ModelRunner`` protocol and the
  ``DirectRunner`` for tests, tools and the benchmark.
"""
