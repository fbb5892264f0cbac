import { test } from 'node:test';
import assert from 'node:assert/strict';
import { handQueue } from '../static/hands.js';

test('handQueue lists raised hands, longest waiting first, self included', () => {
  const self = { sid: 'PA_me', handRaised: true, handRaisedAt: 300 };
  const others = [
    { sid: 'PA_b', handRaised: true, handRaisedAt: 200 },
    { sid: 'PA_c', handRaised: false },
    { sid: 'PA_d', handRaised: true, handRaisedAt: 100 },
    { sid: 'PA_a', handRaised: true, handRaisedAt: 200 },
  ];
  assert.deepEqual(handQueue(self, others).map((p) => p.sid), ['PA_d', 'PA_a', 'PA_b', 'PA_me']);
  assert.deepEqual(handQueue(null, [{ sid: 'x' }]), []);
});

