// Package rooms is the room directory: which participants are in which
// call room, with the tracks each shows to the others, for browser
// participants and ingest streams alike. It owns that state under its own
// mutex, tells a room's members about every change, and has no sockets:
// each participant is reached through a Member, whose Send only queues.
//
// cmd builds one Directory and hands it to signaling (joins, leaves,
// track changes, the admin API) and to ingest (as its Directory), so
// neither has to be built before the other.
//
// Delivery order. Every change is decided under Directory.mu, which also
// collects the messages it causes and their recipients; the messages are
// queued after Directory.mu is released, under the room's own delivery
// lock, taken before Directory.mu is let go. So no Send runs under the
// directory-wide lock, rooms never wait for each other, and every member
// of a room receives the room's messages in the order of the changes
// (a newcomer's "joined" before anything that happened after it).
package rooms
