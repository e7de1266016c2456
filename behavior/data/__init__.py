"""The data side, in the order a video travels: `video` (one interface; `decord_reader` and `pyav_reader` behind
it; `video_info` what they share), `sampling` (which frames), `transforms` (frames to a normalised clip),
`splits` (which videos, which labels), `datasets` (the clip data set and `clip_recipe`), `frame_cache`, `loader`
(the one DataLoader recipe) and `guarded` (work in processes that may hang). Writing video is `writer`."""
