package middleware

// AcceptedDays is the rule the api_token check keeps between the instants
// where it changes, computed afresh, for the tests in middleware_test.
var AcceptedDays = acceptedDays
