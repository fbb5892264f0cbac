import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relayConfig } from '../static/session.js';

const servers = [
  { urls: 'stun:turn.example:3478' },
  {
    urls: ['turn:turn.example:3478', 'turn:turn.example:3478?transport=tcp', 'turns:turn.example:443?transport=tcp'],
    username: 'u', credential: 'c',
  },
];

test('relayConfig without relay keeps every server and any path', () => {
  const r = relayConfig(servers, '');
  assert.equal(r.policy, 'all');
  assert.equal(r.servers, servers);
  assert.equal(r.problem, '');
});

test("relayConfig 'all' keeps TURN only and forces relay", () => {
  const r = relayConfig(servers, 'all');
  assert.equal(r.policy, 'relay');
  assert.deepEqual(r.servers, [{ ...servers[1] }]);
  assert.equal(r.problem, '');
});

test("relayConfig 'udp' keeps turn: without transport or with transport=udp", () => {
  const r = relayConfig([...servers, { urls: 'TURN:other:3478?transport=UDP' }], 'udp');
  assert.deepEqual(r.servers.map((s) => s.urls), [['turn:turn.example:3478'], ['TURN:other:3478?transport=UDP']]);
  assert.equal(r.servers[0].username, 'u', 'credentials stay with their URLs');
});

test("relayConfig 'tcp' keeps turn: over tcp and turns:", () => {
  const r = relayConfig(servers, 'tcp');
  assert.deepEqual(r.servers.map((s) => s.urls), [['turn:turn.example:3478?transport=tcp', 'turns:turn.example:443?transport=tcp']]);
});

test('relayConfig reports when no TURN server matches', () => {
  const r = relayConfig([{ urls: 'stun:x' }, { urls: 'turn:y?transport=udp' }], 'tcp');
  assert.equal(r.policy, 'relay');
  assert.deepEqual(r.servers, []);
  assert.match(r.problem, /Relay-only mode \(tcp\).*no matching TURN server/);
});
