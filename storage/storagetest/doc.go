// Package storagetest gives tests a fresh database and bucket on the MariaDB
// and S3-compatible servers that .ci/services starts, and benchmarks the
// bare Tessera AWS driver to compare vesperlog with (BareAWS), behind a
// bounded set of database connections (CapDSN).
//
// Where the servers are comes from the environment:
//
//	VESPER_TEST_MYSQL  a MySQL DSN naming no database
//	                   (default vesper:vesper@tcp(127.0.0.1:3306)/)
//	VESPER_TEST_S3     the S3 endpoint URL (default http://127.0.0.1:7070)
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
//	                   the S3 credentials and region, read by the AWS SDK;
//	                   when unset, NewAWS sets them for the test to the ones
//	                   .ci/services gives versitygw (vesper, vesper-secret,
//	                   us-east-1)
//	CI                 when "true", an unreachable server fails the test
//	                   instead of skipping it
//
// .ci/run exports all of these. A developer who has run .ci/services needs
// none of them.
package storagetest
