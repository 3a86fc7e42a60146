package models

// The store's private classifications, for the tests in models_test.
var (
	IsDuplicate = isDuplicate
	IsDeadlock  = isDeadlock
)
