import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restreamURLProblem } from '../static/restream.js';

test('restreamURLProblem takes RTMP URLs with a host and a stream key, and says what is wrong with others', () => {
  assert.equal(restreamURLProblem('rtmp://a.rtmp.youtube.com/live2/abcd-1234'), '');
  assert.equal(restreamURLProblem('  rtmps://live-api-s.facebook.com:443/rtmp/KEY '), '');
  assert.match(restreamURLProblem(''), /Enter/);
  assert.match(restreamURLProblem(null), /Enter/);
  assert.match(restreamURLProblem('https://example.com/live/key'), /rtmp:\/\//);
  assert.match(restreamURLProblem('rtmp://example.com/'), /stream key/);
  assert.match(restreamURLProblem('not a url'), /not a URL/);
  assert.match(restreamURLProblem('rtmp://h/' + 'k'.repeat(1100)), /too long/);
});
