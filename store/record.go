package store

import (
	"errors"
	"fmt"
	"io"
)

// A sealed record is laid out as
//
//	version (1) | key id (4) | wrapped data key (60) | nonce (12) | ciphertext and tag
//
// The data key is random for each record and seals the value with
// AES-256-GCM. The ring key named by the key id wraps the data key (its own
// nonce, the 32 bytes, a tag). Both seals bind the record id as additional
// data, so a record copied to another id does not open; the wrap also binds
// the version and the key id. Rotation rewrites only the header.
const (
	recordVersion = 1
	idSize        = 4
	nonceSize     = 12
	tagSize       = 16
	wrappedSize   = nonceSize + KeySize + tagSize // 60
	headerSize    = 1 + idSize + wrappedSize + nonceSize
	minRecordSize = headerSize + tagSize // an empty value
)

// ErrTampered means a sealed record does not open: it is damaged,
// truncated, or was moved from another key.
var ErrTampered = errors.New("sealed record is damaged or was moved")

// ErrUnknownKey means a record was sealed under a key that is not in the
// ring.
var ErrUnknownKey = errors.New("sealed under a seal key not in the ring")

// record is a parsed sealed record; its slices alias the blob.
type record struct {
	id      keyID
	wrapped []byte
	nonce   []byte
	data    []byte
}

// parseRecord checks a blob's length and version before any slicing.
func parseRecord(blob []byte) (record, error) {
	switch {
	case len(blob) == 0:
		return record{}, fmt.Errorf("%w: empty", ErrTampered)
	case blob[0] != recordVersion:
		return record{}, fmt.Errorf("%w: unknown version %d", ErrTampered, blob[0])
	case len(blob) < minRecordSize:
		return record{}, fmt.Errorf("%w: %d bytes, shorter than any record", ErrTampered, len(blob))
	}
	rest := blob[1+idSize:]
	return record{
		id:      keyID(blob[1 : 1+idSize]),
		wrapped: rest[:wrappedSize],
		nonce:   rest[wrappedSize:][:nonceSize],
		data:    rest[wrappedSize+nonceSize:],
	}, nil
}

// dataAD is the additional data of a value: the record id.
func dataAD(name string) []byte {
	return append([]byte("mcpgate record v1\x00"), name...)
}

// wrapAD is the additional data of a wrapped data key: version, key id and
// record id.
func wrapAD(id keyID, name string) []byte {
	ad := append([]byte("mcpgate data key v1\x00"), recordVersion)
	ad = append(ad, id[:]...)
	return append(ad, name...)
}

// seal encrypts value for the record named name under a fresh data key
// wrapped by the current key.
func (r *Ring) seal(name string, value []byte) ([]byte, error) {
	dek := make([]byte, KeySize+nonceSize)
	if _, err := io.ReadFull(r.rand, dek); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	dek, nonce := dek[:KeySize], dek[KeySize:]
	defer clear(dek)
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	k := r.current()
	blob := append(make([]byte, 0, headerSize+len(value)+tagSize), recordVersion)
	blob = append(blob, k.id[:]...)
	if blob, err = r.wrap(blob, k, name, dek); err != nil {
		return nil, err
	}
	blob = append(blob, nonce...)
	return aead.Seal(blob, nonce, value, dataAD(name)), nil
}

// wrap appends dek sealed under k, with a fresh nonce, to dst.
func (r *Ring) wrap(dst []byte, k *ringKey, name string, dek []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(r.rand, nonce); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	dst = append(dst, nonce...)
	return k.aead.Seal(dst, nonce, dek, wrapAD(k.id, name)), nil
}

// unwrap returns the data key of rec, which must be named name.
func (r *Ring) unwrap(rec record, name string) ([]byte, error) {
	k := r.lookup(rec.id)
	if k == nil {
		return nil, fmt.Errorf("%w (key id %x)", ErrUnknownKey, rec.id[:])
	}
	nonce, sealed := rec.wrapped[:nonceSize], rec.wrapped[nonceSize:]
	dek, err := k.aead.Open(nil, nonce, sealed, wrapAD(rec.id, name))
	if err != nil {
		return nil, fmt.Errorf("%w: data key does not open", ErrTampered)
	}
	return dek, nil
}

// open returns the value of blob, which must be the record named name.
func (r *Ring) open(name string, blob []byte) ([]byte, error) {
	rec, err := parseRecord(blob)
	if err != nil {
		return nil, err
	}
	dek, err := r.unwrap(rec, name)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	value, err := aead.Open(nil, rec.nonce, rec.data, dataAD(name))
	if err != nil {
		return nil, fmt.Errorf("%w: value does not open", ErrTampered)
	}
	return value, nil
}

// rewrap returns blob with its data key wrapped by the current key, and
// the value's nonce and ciphertext unchanged. It returns nil if blob is
// already under the current key. It checks the data key, not the value: a
// damaged value stays damaged, and reading it reports ErrTampered. count
// runs just before the wrap (Sealed counts it there); its error stops
// the rewrap.
func (r *Ring) rewrap(name string, blob []byte, count func() error) ([]byte, error) {
	rec, err := parseRecord(blob)
	if err != nil {
		return nil, err
	}
	k := r.current()
	if rec.id == k.id {
		return nil, nil
	}
	dek, err := r.unwrap(rec, name)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	if err := count(); err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, len(blob)), recordVersion)
	out = append(out, k.id[:]...)
	if out, err = r.wrap(out, k, name, dek); err != nil {
		return nil, err
	}
	out = append(out, rec.nonce...)
	return append(out, rec.data...), nil
}
