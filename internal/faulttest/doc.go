// Package faulttest proves fiberchat's promises under faults, with real
// processes: its tests start a MariaDB server of their own (mariadbd on a
// temporary datadir and port, never the shared one) and the sample app as
// a child process, then pause, stop, kill and restart them while Go
// clients send messages, and check the database afterwards.
//
// The promise under test is that an acknowledged Send is stored exactly
// once, whatever fails: a database that stops answering or goes away
// costs a request its QueryTimeout and a 503/1503, never a hang, a half
// write or a duplicate; the service recovers by itself when the database
// comes back; a server killed mid-load loses nothing it acknowledged, and
// a client retrying with its client_msg_id never doubles a message; a
// server told to stop answers every parked poll and every Send in flight
// and exits within its shutdown bound.
//
// The tests run on Linux (they signal process groups and raise the
// open-file limit) and skip when mariadbd or mariadb-install-db is not
// installed. The package holds tests only; the whole of it runs in well
// under a minute.
package faulttest
