value = 'sibling module'
