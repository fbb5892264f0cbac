// Shortcuts are the call page's keys: M toggles the microphone, V the
// camera, Space held while muted talks (push-to-talk) and Escape closes
// the devices panel. Keys typed into a text field, a select or with a
// modifier are the field's, never a shortcut.

import { $ } from './dom.js';

// typing: the key goes to something that takes text or its own keys.
export function typing(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  return tag === 'input' || tag === 'textarea' || tag === 'select' || !!target.isContentEditable;
}

export class Shortcuts {
  // ui: the call's UI (its buttons' handlers do the work).
  constructor(call) {
    this.call = call;
    this.talking = false; // Space is held and unmuted the microphone
    this.onDown = (ev) => this.down(ev);
    this.onUp = (ev) => this.up(ev);
    this.onBlur = () => this.release();
  }

  mount() {
    document.addEventListener('keydown', this.onDown);
    document.addEventListener('keyup', this.onUp);
    window.addEventListener('blur', this.onBlur);
  }

  unmount() {
    document.removeEventListener('keydown', this.onDown);
    document.removeEventListener('keyup', this.onUp);
    window.removeEventListener('blur', this.onBlur);
  }

  micOn() {
    const d = this.call.media.describe().microphone;
    return !!(d && d.enabled);
  }

  down(ev) {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (key === 'm' && !ev.repeat) {
      $('mic-btn').click();
      ev.preventDefault();
    } else if (key === 'v' && !ev.repeat) {
      $('cam-btn').click();
      ev.preventDefault();
    } else if (key === ' ') {
      // Space on a focused button presses it; elsewhere it talks.
      if (ev.target.closest && ev.target.closest('button, a, [role="button"], summary')) return;
      ev.preventDefault();
      if (ev.repeat || this.talking || this.micOn() || $('mic-btn').disabled) return;
      this.talking = true;
      this.call.setMuted('microphone', false);
    } else if (key === 'Escape' && !$('devices').hidden) {
      $('devices-btn').click();
      $('devices-btn').focus();
    }
  }

  up(ev) {
    if (ev.key === ' ') this.release();
  }

  release() {
    if (!this.talking) return;
    this.talking = false;
    this.call.setMuted('microphone', true);
  }
}
