module sharecheck/kfake

go 1.26
