// Join choices: what the pre-join screen asks (name, microphone and camera
// on or off, which devices) and remembers in this browser for the next
// meeting. DOM-free: the store is anything with getItem/setItem
// (localStorage in the page, a Map-like fake in tests).

export const CHOICES_KEY = 'parley.join';

const MAX_NAME = 64; // the landing form's and the server's limit
const MAX_ID = 256; // device ids are opaque strings; bound what we keep

export function defaultChoices() {
  return { name: '', micOn: true, camOn: true, camera: '', microphone: '', speaker: '' };
}

// cleanChoices keeps only well-formed fields of c (stored data may be old,
// edited by hand or from another version), filling in the defaults.
export function cleanChoices(c) {
  const out = defaultChoices();
  if (!c || typeof c !== 'object') return out;
  if (typeof c.name === 'string') out.name = c.name.trim().slice(0, MAX_NAME);
  if (typeof c.micOn === 'boolean') out.micOn = c.micOn;
  if (typeof c.camOn === 'boolean') out.camOn = c.camOn;
  for (const k of ['camera', 'microphone', 'speaker']) {
    if (typeof c[k] === 'string' && c[k].length <= MAX_ID) out[k] = c[k];
  }
  return out;
}

// loadChoices reads the remembered choices; defaults when there are none
// or storage is unavailable (private mode, disabled).
export function loadChoices(store) {
  try {
    const raw = store && store.getItem(CHOICES_KEY);
    return cleanChoices(raw ? JSON.parse(raw) : null);
  } catch {
    return defaultChoices();
  }
}

// saveChoices remembers c; false when storage refused it.
export function saveChoices(store, c) {
  try {
    store.setItem(CHOICES_KEY, JSON.stringify(cleanChoices(c)));
    return true;
  } catch {
    return false;
  }
}

// deviceConstraint asks for a remembered device without failing when it
// is gone (unplugged): `ideal` falls back to the default device.
export function deviceConstraint(deviceId) {
  return deviceId ? { deviceId: { ideal: deviceId } } : {};
}
