// The stems in sync: one AudioBufferSourceNode per track, all started at the same AudioContext
// time, each through its own GainNode (volume, mute, solo) into a master gain. An AnalyserNode
// after each track's gain measures what that track really sends to the mix.

import { encodeWav } from "./wav.js";

/** What a track sends: nothing when muted, or when another track is soloed and it is not. */
export function effectiveGain(track, anySolo) {
  if (track.muted || (anySolo && !track.solo)) return 0;
  return track.volume;
}

const START_AHEAD_SECONDS = 0.05;

export class Mixer {
  constructor(context) {
    this.context = context;
    this.master = context.createGain();
    this.master.connect(context.destination);
    this.tracks = [];
    this.loop = false;
    this.playing = false;
    this.offset = 0; // seconds into the stems where playback (re)starts
    this.startedAt = null; // context time at which the current sources started
    this.onchange = () => {};
    this._batch = null;
  }

  addTrack({ name, buffer, muted = false, kind = "stem" }) {
    const gain = this.context.createGain();
    const meter = this.context.createAnalyser();
    meter.fftSize = 2048;
    gain.connect(meter);
    gain.connect(this.master);
    const track = { name, kind, buffer, gain, meter, volume: 1, muted, solo: false, source: null };
    this.tracks.push(track);
    this.apply();
    return track;
  }

  get duration() {
    return this.tracks.reduce((longest, t) => Math.max(longest, t.buffer.duration), 0);
  }

  get anySolo() {
    return this.tracks.some((t) => t.solo);
  }

  apply() {
    const anySolo = this.anySolo;
    for (const track of this.tracks) track.gain.gain.value = effectiveGain(track, anySolo);
    this.onchange();
  }

  setMuted(track, muted) { track.muted = muted; this.apply(); }
  setSolo(track, solo) { track.solo = solo; this.apply(); }
  setVolume(track, volume) { track.volume = volume; this.apply(); }

  setLoop(loop) {
    this.loop = loop;
    if (this.playing) this.seek(this.position());
  }

  /** Seconds into the stems now. */
  position() {
    if (!this.playing) return this.offset;
    const elapsed = Math.max(0, this.context.currentTime - this.startedAt) + this.offset;
    const duration = this.duration;
    if (!duration) return 0;
    return this.loop ? elapsed % duration : Math.min(elapsed, duration);
  }

  async play() {
    if (this.playing || !this.tracks.length) return;
    await this.context.resume();
    if (this.offset >= this.duration) this.offset = 0;
    const when = this.context.currentTime + START_AHEAD_SECONDS;
    const batch = [];
    for (const track of this.tracks) {
      track.source = null;
      if (this.offset >= track.buffer.duration) continue;
      const source = this.context.createBufferSource();
      source.buffer = track.buffer;
      source.loop = this.loop;
      source.connect(track.gain);
      source.start(when, this.offset);
      track.source = source;
      batch.push(source);
    }
    this._batch = batch;
    this.startedAt = when;
    this.playing = true;
    if (!this.loop && batch.length) {
      // The longest source ending ends playback (unless it was stopped or restarted meanwhile).
      const longest = batch.reduce((a, b) => (b.buffer.duration > a.buffer.duration ? b : a));
      longest.onended = () => {
        if (this._batch === batch) { this._stopSources(); this.offset = 0; this.onchange(); }
      };
    }
    this.onchange();
  }

  pause() {
    if (!this.playing) return;
    const at = this.position();
    this._stopSources();
    this.offset = at;
    this.onchange();
  }

  stop() {
    this._stopSources();
    this.offset = 0;
    this.onchange();
  }

  seek(seconds) {
    const wasPlaying = this.playing;
    this._stopSources();
    this.offset = Math.max(0, Math.min(seconds, this.duration));
    if (wasPlaying) this.play();
    else this.onchange();
  }

  _stopSources() {
    for (const source of this._batch || []) {
      source.onended = null;
      try { source.stop(); } catch { /* never started */ }
      source.disconnect();
    }
    for (const track of this.tracks) track.source = null;
    this._batch = null;
    this.playing = false;
    this.startedAt = null;
  }

  /** Per track, the RMS level it sends to the mix right now (0 when silent or muted). */
  levels() {
    const samples = new Float32Array(2048);
    return Object.fromEntries(this.tracks.map((track) => {
      track.meter.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      return [track.name, Math.sqrt(sum / samples.length)];
    }));
  }

  /** The tracks as they are set now (volume, mute, solo) mixed into a 16-bit stereo WAV. */
  async renderMix() {
    const sampleRate = this.context.sampleRate;
    const frames = Math.max(1, Math.ceil(this.duration * sampleRate));
    const offline = new OfflineAudioContext(2, frames, sampleRate);
    const anySolo = this.anySolo;
    for (const track of this.tracks) {
      const level = effectiveGain(track, anySolo);
      if (!level) continue;
      const gain = offline.createGain();
      gain.gain.value = level;
      gain.connect(offline.destination);
      const source = offline.createBufferSource();
      source.buffer = track.buffer;
      source.connect(gain);
      source.start(0);
    }
    const rendered = await offline.startRendering();
    return encodeWav([rendered.getChannelData(0), rendered.getChannelData(1)], sampleRate);
  }

  close() {
    this._stopSources();
    return this.context.close();
  }
}
