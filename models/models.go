// Package models holds fiberchat's GORM models and the queries on them.
// The handlers and middleware reach it through narrow interfaces that
// module wires up; a host imports it only to extend a model (such as User)
// with columns of its own.
//
// Table names come from the module's naming strategy (the configured
// prefix, "chat_" by default, before GORM's snake-case plural), so the
// structs carry no TableName methods. A host that adds its own columns to a
// table embeds the model in its own struct and names the table itself.
// Times are unix seconds in int64 columns: the same on every database, with
// no time-zone conversion in drivers.
package models

// APIClient is an API client ("interface user" of seed 003): an app that may
// call the API at all. Its secret is kept as given because the server must
// recompute each day's api_token from it; it is never shown again after
// creation.
type APIClient struct {
	ID        int64  `gorm:"primaryKey"`
	ClientID  string `gorm:"column:client_id;size:20;not null;uniqueIndex"`
	Secret    string `gorm:"column:client_secret;size:128;not null"`
	Name      string `gorm:"size:64;not null"`
	Disabled  bool   `gorm:"not null"`
	CreatedAt int64  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt int64  `gorm:"not null;autoUpdateTime:false"`
}

// User is a chat user. UIDs are handed out from 10000001 upward (the
// migrations set the auto-increment start).
type User struct {
	UID          int64  `gorm:"column:uid;primaryKey;autoIncrement"`
	Name         string `gorm:"size:32;not null"`
	PasswordHash string `gorm:"column:passwd_hash;size:100;not null"`
	HeadImg      string `gorm:"column:head_img;size:512;not null"`
	// HostRef is the host site's own id for the account this chat user
	// belongs to, when the host provisioned it; nil for users who
	// registered through the API.
	HostRef *string `gorm:"column:host_ref;size:64;uniqueIndex"`
	// Handle is the user's handle (API.md §14), lower-cased, so that its
	// unique index makes it unique whatever the case; nil for none.
	Handle *string `gorm:"column:handle;size:32;uniqueIndex"`
	// Discoverable lets /Contacts/search find the user. The column's
	// default (1) applies to users created without it.
	Discoverable bool  `gorm:"column:discoverable;not null;default:true"`
	CreatedAt    int64 `gorm:"not null;autoCreateTime:false"`
	UpdatedAt    int64 `gorm:"not null;autoUpdateTime:false"`
	// LastSeen is when the user was last seen online (unix seconds; 0:
	// never), and ShowPresence whether they show it (API.md §13).
	LastSeen     int64 `gorm:"not null"`
	ShowPresence bool  `gorm:"not null;default:true"`
	// MailboxSeq is bumped, on a Galera cluster only, by every
	// transaction that takes the user's row lock (a Send to them, a
	// contact, block or read change): the write that makes certification
	// order such transactions made on different nodes (see
	// Store.bumpMailboxes). Nothing reads it.
	MailboxSeq int64 `gorm:"column:mailbox_seq;not null;default:0"`
	// RelationsSeq is bumped by every transaction that makes or ends one
	// of the user's contacts or blocks: a message batch that reads it
	// unchanged knows the pairs it checked before are as they were (see
	// relationsCache).
	RelationsSeq int64 `gorm:"column:relations_seq;not null;default:0"`
}

// UserToken is one login session. Only the SHA-256 of the access token is
// stored, so a leaked table does not leak sessions.
type UserToken struct {
	ID         int64  `gorm:"primaryKey"`
	UID        int64  `gorm:"column:uid;not null;index"`
	TokenHash  string `gorm:"column:token_hash;size:64;not null;uniqueIndex"`
	ExpireTime int64  `gorm:"column:expire_time;not null;index"`
	CreatedAt  int64  `gorm:"not null;autoCreateTime:false"`
	// RecvCursor is the id of the last message Recv handed to this session
	// when the client keeps no cursor of its own (API.md §5).
	RecvCursor int64 `gorm:"column:recv_cursor;not null;default:0"`
}

// All lists every model the migrations create, for schema checks.
func All() []any {
	return []any{&APIClient{}, &User{}, &UserToken{}, &Contact{}, &ContactRequest{}, &Message{}, &Conversation{}, &Block{}, &Avatar{}, &AvatarOwner{}, &Group{}, &GroupMember{}, &GroupSpan{}, &DeviceKey{}, &File{}, &FileChunk{}, &Secret{}, &VapidKey{}, &PushSubscription{}}
}
