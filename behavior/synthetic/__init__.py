"""The embedded data set: five behaviours of procedurally drawn figures, written as real encoded videos.

`generate_dataset(out)` writes a UCF101-style tree that every other command reads like the real thing:

    OUT/videos/<class>/v_<ClassCamel>_gGG_cCC.<mp4|avi>
    OUT/splits/classInd.txt  trainlist01.txt  testlist01.txt

Classes: walk, run, wave, sit_down, stand_up. A *group* (UCF101's gGG) is one actor and scene look: body
size and proportions, clothing colours, background, distractor and occluder look. Group gGG has the same look
in every class (as in KTH, every actor performs every behaviour), so a look tells nothing about the class and
a model cannot score by remembering scenes. Clips of a group vary position, speed, phase, direction, camera
position and pan, and length (1.5 to 4 s). Groups 1 to ~28% are the test split in every class (UCF101
split 1 holds out groups 1-7 of 25), so no look is in both splits.

Drawing and rendering are separate: `plan_dataset` draws one `ClipSpec` per video (every random choice of
the clip, from a seed derived from (seed, class, group, clip), so workers never change the result), and
`render_clip(spec)` turns a spec into uint8 (T, H, W, 3) frames with no randomness of its own.

What makes the classes learnable and honest:
- every look, colour, size, length and scene setting is drawn from the same distribution for every class;
- walk and run differ in pose (run: forward lean, bent pumping arms, larger leg swing, strong knee bend,
  bounce, faster cadence) and in world speed (2-3x; the camera pans to keep a fast figure in frame);
- wave is a standing figure, one forearm swinging side to side above the shoulder;
- stand_up is exactly sit_down played backwards (`render_clip` renders the sit_down clip of the same spec,
  distractors, shake and noise included, and reverses it), with start and end holds drawn from one
  distribution, so only the order of the frames tells the two apart.

Beside the five, to measure whether a model can say "none of these": `generate_unseen(out)` writes OUT/unseen/,
four behaviours outside the five (jump, bend, clap, idle) in the looks of the test groups, listed in no split
file; `generate_recordings(out, n)` writes OUT/recordings/, long videos of known behaviours separated by idle
stretches, the empty scene and unseen behaviours, each with a per-frame label track beside it.

The generator in parts: `spec` says what a clip is (`ClipSpec`), `plan` draws every random choice of each clip,
`pose` turns a spec into joint positions over time, `render` draws the frames, `generate` encodes them and
writes the split files, `recording` strings clips into long recordings.
"""

from behavior.synthetic.generate import SynthReport, UnseenReport, generate_dataset, generate_unseen
from behavior.synthetic.plan import draw_clip_spec, plan_dataset, plan_unseen
from behavior.synthetic.pose import compute_pose, sit_progress
from behavior.synthetic.recording import (
    generate_recordings,
    label_track_path,
    plan_recording,
    read_label_track,
    write_recording,
)
from behavior.synthetic.render import render_clip
from behavior.synthetic.spec import CLASSES, DIFFICULTIES, EMPTY, UNSEEN, ClipSpec

__all__ = [
    "CLASSES",
    "DIFFICULTIES",
    "EMPTY",
    "UNSEEN",
    "ClipSpec",
    "SynthReport",
    "UnseenReport",
    "compute_pose",
    "draw_clip_spec",
    "generate_dataset",
    "generate_recordings",
    "generate_unseen",
    "label_track_path",
    "plan_dataset",
    "plan_recording",
    "plan_unseen",
    "read_label_track",
    "render_clip",
    "sit_progress",
    "write_recording",
]
