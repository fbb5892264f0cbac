package rooms

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"

	"github.com/parleyhq/parley/signaling/proto"
)

// MaxTracksPerParticipant bounds announced plus published tracks.
const MaxTracksPerParticipant = 32

// Errors callers branch on.
var (
	// ErrRoomFull refuses a join or stream beyond Config.MaxParticipants.
	ErrRoomFull = errors.New("room is full")
	// ErrIdentityInRoom refuses a stream whose identity is already present.
	ErrIdentityInRoom = errors.New("identity already in the room")
	// ErrNoParticipant: no such room or participant.
	ErrNoParticipant = errors.New("no such participant")
	// ErrNoTrack: the participant has no track with that sid.
	ErrNoTrack = errors.New("no such track")
	// ErrStream: the admin API cannot act on an ingest stream this way.
	ErrStream = errors.New("participant is an ingest stream")
)

//nolint:gochecknoglobals // a read-only pattern
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// NameRule says nameRE in words, for people who typed a bad room name.
const NameRule = "A room name uses letters, digits, - and _ only (no spaces or dots), up to 64 characters."

// ValidName reports whether name may name a room.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Config bounds the directory.
type Config struct {
	// MaxParticipants refuses joins beyond this many per room (0: no limit).
	MaxParticipants int
}

// Directory is every room with its participants.
type Directory struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	rooms map[string]*room
	count int // participants in all rooms
}

// New makes an empty directory; log may be nil.
func New(cfg Config, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Directory{cfg: cfg, log: log, rooms: map[string]*room{}}
}

// release unlocks d.mu and then performs dl, holding the room's delivery
// lock from before the unlock so that deliveries keep the order of the
// changes that made them.
func (d *Directory) release(dl *delivery) {
	if dl == nil || dl.r == nil || len(dl.acts) == 0 {
		d.mu.Unlock()
		return
	}
	dl.r.out.Lock()
	d.mu.Unlock()
	defer dl.r.out.Unlock()
	dl.run()
}

// Counts returns how many rooms have participants, and how many
// participants they have together.
func (d *Directory) Counts() (rooms, participants int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.rooms), d.count
}

// HasSpace is a cheap early check, so that a full room is refused before
// media resources are made; Join checks again.
func (d *Directory) HasSpace(roomName, identity string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hasSpaceLocked(roomName, identity)
}

func (d *Directory) hasSpaceLocked(roomName, identity string) bool {
	max := d.cfg.MaxParticipants
	r := d.rooms[roomName]
	if max == 0 || r == nil {
		return true
	}
	n := len(r.participants)
	if _, ok := r.participants[identity]; ok {
		n-- // the newcomer replaces this one
	}
	return n < max
}

func (d *Directory) roomLocked(name string) *room {
	r := d.rooms[name]
	if r == nil {
		r = &room{name: name, participants: map[string]*Participant{}}
		d.rooms[name] = r
	}
	return r
}

// Joined builds the newcomer's "joined" from its own view and the others'
// (in join order). It runs under the directory's lock: no I/O.
type Joined func(self proto.ParticipantView, others []proto.ParticipantView) []byte

// Join puts p in its room, replacing (bye "replaced") an older
// participant with the same identity, sends p the message joined builds,
// and tells the others. The room's later messages reach p after it.
func (d *Directory) Join(p *Participant, joined Joined) error {
	d.mu.Lock()
	if !d.hasSpaceLocked(p.Room, p.Identity) {
		d.mu.Unlock()
		return fmt.Errorf("join %s: %w", p.Room, ErrRoomFull)
	}
	r := d.roomLocked(p.Room)
	dl := &delivery{r: r}
	if old := r.participants[p.Identity]; old != nil {
		d.detachLocked(dl, old)
		dl.bye(old, proto.ByeReplaced)
	}
	if p.tracks == nil {
		p.tracks = map[string]*track{}
	}
	others := r.sortedLocked()
	r.participants[p.Identity] = p
	d.count++
	views := make([]proto.ParticipantView, 0, len(others))
	for _, o := range others {
		views = append(views, o.viewLocked())
	}
	self := p.viewLocked()
	dl.to(p, joined(self, views))
	dl.broadcast(p, proto.Encode(proto.TypeParticipantJoined, "", proto.ParticipantBody{Participant: self}))
	d.release(dl)
	return nil
}

// Leave removes p from its room (once) and tells the others. Closing p's
// media is the caller's business.
func (d *Directory) Leave(p *Participant) {
	d.mu.Lock()
	dl := &delivery{r: d.rooms[p.Room]}
	d.detachLocked(dl, p)
	d.release(dl)
}

// detachLocked removes p and adds "participant_left" to dl, whose room
// must be p's.
func (d *Directory) detachLocked(dl *delivery, p *Participant) {
	if p.removed {
		return
	}
	p.removed = true
	r := d.rooms[p.Room]
	if r == nil || r.participants[p.Identity] != p {
		return
	}
	delete(r.participants, p.Identity)
	d.count--
	dl.broadcast(nil, proto.Encode(proto.TypeParticipantLeft, "", proto.ParticipantLeftBody{SID: p.SID, Identity: p.Identity}))
	if len(r.participants) == 0 {
		delete(d.rooms, p.Room)
	}
}

// updatedLocked tells the whole room (p included, so it learns its track
// sids) that p changed.
func (d *Directory) updatedLocked(p *Participant) *delivery {
	if p.removed {
		return nil
	}
	r := d.rooms[p.Room]
	if r == nil {
		return nil
	}
	dl := &delivery{r: r}
	dl.broadcast(nil, proto.Encode(proto.TypeParticipantUpdated, "", proto.ParticipantBody{Participant: p.viewLocked()}))
	return dl
}

// Lookup finds a participant by room and identity.
func (d *Directory) Lookup(roomName, identity string) *Participant {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.rooms[roomName]; r != nil {
		return r.participants[identity]
	}
	return nil
}
