// Package audiolevel reads the RFC 6464 client-to-mixer audio level that
// publishers put in an RTP header extension, smooths it per participant,
// and picks the room's active speaker.
//
// Why it exists: the room wants to know who is speaking (highlighted tile,
// speaker layout, the bandwidth allocator's priority) without the SFU
// decoding any audio. Browsers measure the level of every Opus frame and
// send it as one byte: 0-127, the level in -dBov (0 loudest, 127 silence),
// plus a V bit for voice activity. Reading it costs a few nanoseconds.
//
// Smoothing: a per-frame level jumps between syllables, so each
// participant has a Smoother: an exponential average of linear energy
// (10^(-level/10)) with a time constant of about 300 ms. Averaging energy
// rather than decibels makes a loud burst count for what it is; the time
// since the last packet decays the average as silence, because with DTX a
// silent publisher sends almost nothing and its level must fall anyway.
//
// Speaker selection, with hysteresis so the highlight does not flicker:
//
//   - a frame is voiced when its level is at or above Threshold (a level
//     number at or below it); a run of speech is voiced frames whose gaps
//     are shorter than Hangover (pauses between words do not end it);
//   - a participant is speaking once its run holds Activate (300 ms) of
//     voiced frames, so a cough or a door (shorter than 300 ms) never
//     counts, and stops speaking Hangover after its last voiced frame
//     arrived, or at once when its track is muted;
//   - voiced time and the pauses within a run are the audio's own time,
//     read from the packets' RTP timestamps, not their arrival: on a
//     loaded machine packets come in bunches after stalls of half a
//     second, and by arrival a bunch of 300 ms of speech would count
//     as a few ms after a pause longer than Hangover;
//   - the active (dominant) speaker stays active while it is quiet for
//     less than Hold; when it has been quiet that long and someone else
//     is speaking, the loudest other speaker takes over, within about
//     Hold + one tick of starting (1.5 s at most with the defaults);
//   - while both talk, a challenger takes over only after being louder by
//     Margin dB for Overtake without a break (a crosstalk does not switch);
//   - with no active speaker yet, the first to be speaking becomes it.
//
// The Room is polled (Tick) by the SFU every 100 ms or so, and at once
// when someone has just become speaking (Wake), so the first Update after
// a quiet time does not wait for the next tick. Tick returns an Update
// only when the active speaker, the set or order of speakers, or a
// speaker's level (quantised to steps of 0.05) changed, and not more often
// than MinInterval, so a room of any size sends its clients a few
// messages a second at most. A change held back by the rate limit is
// delivered by a later Tick. The clock is injected for the tests, which
// run on testing/synctest's fake time.
//
// Cost: a Source is fed from the track's read loop; reading the byte and
// updating the smoother takes one uncontended lock and one math.Exp, no
// allocation. Tick allocates only the Update it returns.
package audiolevel
