// Browser globals the models use that node 18 (Debian 12's nodejs) lacks:
// CustomEvent (global since node 19) and crypto.randomUUID (the global
// crypto object since node 19). Newer nodes keep their own. Every test
// file imports this before the modules under test.

import { webcrypto } from 'node:crypto';

if (typeof globalThis.CustomEvent !== 'function') {
  globalThis.CustomEvent = class CustomEvent extends Event {
    constructor(type, init = {}) {
      super(type, init);
      this.detail = init.detail === undefined ? null : init.detail;
    }
  };
}

if (!globalThis.crypto) {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true });
}
