import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { FakeSignaling } from './fake-signaling.js';
import { Link } from '../static/link.js';
import { SignalingError } from '../static/signaling.js';

// Cluster mode (docs/cluster.md): a join refused with wrong_node moves
// the page to the node that hosts the room, with the newest token, and
// the link ends here instead of retrying this node.
test('wrong_node moves to the hosting node with the token and ends the link', async () => {
  const moves = [];
  const sigs = [];
  const link = new Link({
    token: 't0', url: 'ws://b/ws', log: () => {},
    signaling: () => {
      const s = new FakeSignaling({
        answer: (type) => {
          if (type === 'join') throw new SignalingError('wrong_node', 'hosted elsewhere', 'https://a.example');
          return {};
        },
      });
      sigs.push(s);
      return s;
    },
    move: (base, token) => moves.push({ base, token }),
  });
  const ended = [];
  link.addEventListener('ended', (ev) => ended.push(ev.detail));
  await link.start();
  assert.deepEqual(moves, [{ base: 'https://a.example', token: 't0' }]);
  assert.equal(sigs.length, 1, 'no retry on this node');
  assert.equal(ended.length, 1);
  assert.match(ended[0].message, /https:\/\/a\.example/);
  assert.equal(link.retryTimer, 0);
});

test('a wrong_node without a url is an ordinary refusal and is retried', async () => {
  const moves = [];
  let n = 0;
  const link = new Link({
    token: 't0', url: 'ws://b/ws', log: () => {},
    signaling: () => new FakeSignaling({
      answer: (type) => {
        if (type === 'join' && n++ === 0) throw new SignalingError('wrong_node', 'no url');
        return {};
      },
    }),
    move: (base, token) => moves.push({ base, token }),
  });
  await link.start();
  assert.deepEqual(moves, []);
  assert.equal(link.status, 'reconnecting');
  link.end('done');
});

test('a moved page whose node stops answering goes back home after a few failed rejoins', async () => {
  const clock = new FakeClock().install();
  const realRandom = Math.random;
  Math.random = () => 0.5; // backoff without jitter: 500, 1000, 2000, 4000
  try {
    const moves = [];
    let sigs = 0;
    const link = new Link({
      token: 't0', url: 'ws://a/ws', log: () => {}, home: 'https://front.example',
      signaling: () => {
        sigs++;
        return new FakeSignaling({ openError: new Error('websocket error') });
      },
      move: (base, token) => moves.push({ base, token }),
    });
    await link.start();
    await clock.advance(7400);
    assert.deepEqual(moves, [], 'not before the fourth rejoin failed');
    await clock.advance(200);
    assert.deepEqual(moves, [{ base: 'https://front.example', token: 't0' }]);
    assert.equal(sigs, 5, 'the first attempt and four rejoins');
    assert.equal(link.ended, true);
  } finally {
    clock.uninstall();
    Math.random = realRandom;
  }
});

test('a page that was not moved keeps rejoining its own node', async () => {
  const moves = [];
  const link = new Link({
    token: 't0', url: 'ws://a/ws', log: () => {}, home: '',
    signaling: () => new FakeSignaling({ openError: new Error('websocket error') }),
    move: (base, token) => moves.push({ base, token }),
  });
  await link.start();
  link.attempt = 10;
  link.handleConnectError(new Error('websocket error'));
  assert.deepEqual(moves, []);
  link.end('done');
});

test('back home, a wrong_node naming the node it left is waited out, not followed', async () => {
  const clock = new FakeClock().install();
  const realRandom = Math.random;
  Math.random = () => 0.5;
  try {
    const moves = [];
    let n = 0;
    const link = new Link({
      token: 't0', url: 'ws://b/ws', log: () => {}, left: 'https://a.example',
      signaling: () => new FakeSignaling({
        answer: (type) => {
          // The dead node's lease lasts two more attempts.
          if (type === 'join' && n++ < 2) throw new SignalingError('wrong_node', 'hosted on a', 'https://a.example/');
          return {};
        },
      }),
      move: (base, token) => moves.push({ base, token }),
    });
    await link.start();
    await clock.advance(2000);
    assert.deepEqual(moves, []);
    assert.equal(link.status, 'connected');
    assert.equal(link.left, '', 'forgotten once joined');
  } finally {
    clock.uninstall();
    Math.random = realRandom;
  }
});
